#include "worker/inference/validation.hpp"

#include <memory>

#include "worker/inference/decode.hpp"
#include "worker/train/batch.hpp"

namespace smartcash::train {

std::vector<eval::LayerGroup> layer_groups() {
    std::vector<eval::LayerGroup> out;
    for (const auto& l : model::detection_layers())
        out.push_back({l.name, l.first_class, l.num_classes});
    return out;
}

eval::EvalResult evaluate_split(model::DetectorImpl& model, const data::Split& split,
                                const std::vector<std::string>& class_names, const Config& config,
                                const torch::Device& device, int batch,
                                const std::function<void(std::size_t, std::size_t)>& on_batch) {
    // Inference mode, not just no-grad: no version counters or view tracking on the way either.
    // Nothing computed here outlives the evaluation. (On the heap: GCC 16 takes the guard's
    // inlined destructor on the stack for a read of uninitialised memory inside LibTorch 2.14's
    // headers.)
    const auto inference = std::make_unique<c10::InferenceMode>();
    model.eval();
    const int size = config.model.img_size;
    DecodeOptions decode;
    decode.conf_threshold = static_cast<float>(config.training.eval.conf_threshold);
    decode.nms_iou = static_cast<float>(config.training.eval.nms_iou);
    decode.max_detections = static_cast<std::size_t>(config.training.eval.max_detections);
    std::vector<eval::Detection> detections;
    std::vector<eval::GroundTruth> truths;
    const std::size_t n = split.size();
    const auto step = static_cast<std::size_t>(std::max(1, batch));
    auto anchors = model.anchors();
    for (std::size_t start = 0; start < n; start += step) {
        std::vector<data::Sample> samples;
        for (std::size_t i = start; i < std::min(n, start + step); ++i) {
            samples.push_back(data::load_sample(split, i, size, nullptr, 0));
            for (const auto& l : samples.back().labels) {
                const float s = static_cast<float>(size);
                truths.push_back({static_cast<int>(i),
                                  l.cls,
                                  {(l.cx - l.w / 2) * s, (l.cy - l.h / 2) * s, (l.cx + l.w / 2) * s,
                                   (l.cy + l.h / 2) * s}});
            }
        }
        auto b = collate(samples);
        auto outputs = model.forward(b.images.to(device));
        auto dets = decode_detections(outputs, anchors, size, decode, static_cast<int>(start));
        detections.insert(detections.end(), dets.begin(), dets.end());
        if (on_batch) on_batch(std::min(n, start + step), n);
    }
    return eval::evaluate(detections, truths, class_names, layer_groups());
}

}  // namespace smartcash::train
