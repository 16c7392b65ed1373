// Prints what our code computes for inputs given as JSON, so that the scripts under
// tests/reference/ can compare it with independent references (torchvision, a COCO-style
// evaluation written from its definition).
//
//   reference_dump ciou      {"a": [[cx, cy, w, h], ...], "b": [...]}
//                            -> {"ciou": [...],            (float64, pairwise by row)
//                                "grad": [[d/dcx, d/dcy, d/dw, d/dh], ...]}
//                                                          (of each CIoU w.r.t. its box a, the
//                                                          predicted box of the loss)
//   reference_dump nms       {"boxes": [[x1, y1, x2, y2], ...], "scores": [...],
//                             "classes": [...], "iou": t, "max_det": n (optional: no limit)}
//                            -> {"keep": [...]}            (indices, highest score first)
//   reference_dump evaluate  {"detections": [{"image", "cls", "score", "box"}], "truths":
//                             [{"image", "cls", "box"}], "class_names": [...], "layers":
//                             [{"name", "first_class", "num_classes"}]}
//                            -> eval::to_json of the result
//
// The request is read from standard input; the answer goes to standard output. A JSON array of
// requests gets an array of answers, so that one run (one LibTorch start) answers many.
#include <torch/torch.h>

#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/eval/boxes.hpp"
#include "worker/eval/metrics.hpp"
#include "worker/eval/nms.hpp"
#include "worker/train/loss.hpp"

namespace {

using nlohmann::json;
using namespace smartcash;

torch::Tensor rows_f64(const json& rows) {
    std::vector<double> flat;
    for (const auto& row : rows) {
        for (const auto& v : row) flat.push_back(v.get<double>());
    }
    const auto n = static_cast<std::int64_t>(rows.size());
    return torch::tensor(flat, torch::kFloat64).view({n, 4});
}

eval::Box box_of(const json& j) {
    return {j.at(0).get<float>(), j.at(1).get<float>(), j.at(2).get<float>(), j.at(3).get<float>()};
}

json ciou(const json& req) {
    const auto a = rows_f64(req.at("a")).requires_grad_(true);
    const auto b = rows_f64(req.at("b"));
    const auto out = train::complete_iou(a, b);
    // Each CIoU depends on its own row of a only, so the gradient of their sum holds every
    // row's gradient.
    out.sum().backward();
    const auto value = out.detach().contiguous();
    const auto grad = a.grad().contiguous();
    std::vector<double> values(value.data_ptr<double>(), value.data_ptr<double>() + value.numel());
    json grads = json::array();
    for (std::int64_t i = 0; i < grad.size(0); ++i) {
        const double* row = grad.data_ptr<double>() + i * 4;
        grads.push_back(std::vector<double>(row, row + 4));
    }
    return {{"ciou", values}, {"grad", grads}};
}

json nms(const json& req) {
    std::vector<eval::Box> boxes;
    for (const auto& b : req.at("boxes")) boxes.push_back(box_of(b));
    const auto scores = req.at("scores").get<std::vector<float>>();
    const auto classes = req.at("classes").get<std::vector<int>>();
    const auto max_det = req.value("max_det", std::numeric_limits<std::size_t>::max());
    const auto keep = eval::nms(boxes, scores, classes, req.at("iou").get<float>(), max_det);
    return {{"keep", keep}};
}

json evaluate(const json& req) {
    std::vector<eval::Detection> detections;
    for (const auto& d : req.at("detections")) {
        detections.push_back({d.at("image").get<int>(), d.at("cls").get<int>(),
                              d.at("score").get<float>(), box_of(d.at("box"))});
    }
    std::vector<eval::GroundTruth> truths;
    for (const auto& t : req.at("truths")) {
        truths.push_back({t.at("image").get<int>(), t.at("cls").get<int>(), box_of(t.at("box"))});
    }
    std::vector<eval::LayerGroup> layers;
    for (const auto& l : req.value("layers", json::array())) {
        layers.push_back({l.at("name").get<std::string>(), l.at("first_class").get<int>(),
                          l.at("num_classes").get<int>()});
    }
    const auto names = req.at("class_names").get<std::vector<std::string>>();
    return eval::to_json(eval::evaluate(detections, truths, names, layers));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: reference_dump ciou|nms|evaluate < request.json\n";
        return 2;
    }
    const std::string what = argv[1];
    try {
        json (*answer_one)(const json&) = nullptr;
        if (what == "ciou") {
            answer_one = ciou;
        } else if (what == "nms") {
            answer_one = nms;
        } else if (what == "evaluate") {
            answer_one = evaluate;
        } else {
            std::cerr << "reference_dump: unknown request " << what << "\n";
            return 2;
        }
        const json req = json::parse(std::cin);
        json answer = json::array();
        if (req.is_array()) {
            for (const auto& one : req) answer.push_back(answer_one(one));
        } else {
            answer = answer_one(req);
        }
        std::cout << answer.dump() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "reference_dump: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
