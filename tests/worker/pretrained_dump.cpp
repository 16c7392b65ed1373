// Loads a weights file into the full-size EfficientNet-B4 detector with the worker's pretrained
// loader and writes what our backbone computes, for tests/reference/pretrained_reference.py to
// compare with torchvision:
//
//   pretrained_dump WEIGHTS INPUT.safetensors OUT_DIR
//
// INPUT holds "images" [B, 3, H, W]. Writes OUT_DIR/eval.safetensors (p3, p4, p5 in eval mode),
// OUT_DIR/train.safetensors (the same for one training-mode forward, stochastic depth off) and
// OUT_DIR/after_train.safetensors (the backbone after that forward, in torchvision's names: the
// batch-norm running statistics it updated). Prints the load plan as JSON on stdout.
#include <torch/torch.h>

#include <iostream>

#include "common/atomic_file.hpp"
#include "worker/model/detector.hpp"
#include "worker/model/pretrained.hpp"
#include "worker/model/safetensors.hpp"

namespace {

using namespace smartcash;

void write_features(const std::string& path, const model::FeaturePyramid& features) {
    model::NamedTensors out;
    out.tensors = {{"p3", features[0]}, {"p4", features[1]}, {"p5", features[2]}};
    write_file_atomic(path, model::safetensors_bytes(out));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: pretrained_dump WEIGHTS INPUT.safetensors OUT_DIR\n";
        return 2;
    }
    try {
        torch::set_num_threads(1);
        const std::string out_dir = argv[3];
        model::DetectorOptions options;
        options.backbone = Backbone::efficientnet_b4;
        options.drop_connect = 0.0;  // the training-mode comparison runs with drop-connect off
        model::Detector detector(options);

        const auto file = model::read_weights_file(argv[1]);
        const auto plan = model::plan_pretrained(*detector, file);
        model::apply_pretrained(*detector, plan, file, /*strict=*/true);
        auto report = model::to_json(plan);
        report["backbone_tensors"] = detector->backbone_module().named_parameters().size() +
                                     detector->backbone_module().named_buffers().size();
        std::cout << report.dump() << "\n";

        torch::Tensor images;
        for (const auto& [name, t] : model::read_safetensors(argv[2]).tensors)
            if (name == "images") images = t.to(torch::kFloat32);
        if (!images.defined()) throw std::runtime_error(std::string(argv[2]) + " has no 'images'");

        {
            torch::NoGradGuard no_grad;
            detector->eval();
            write_features(out_dir + "/eval.safetensors", detector->backbone().forward(images));
            detector->train();
            write_features(out_dir + "/train.safetensors", detector->backbone().forward(images));
        }
        write_file_atomic(out_dir + "/after_train.safetensors",
                          model::export_weights(*detector, model::Naming::torchvision,
                                                /*backbone_only=*/true));
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
