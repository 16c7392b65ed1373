#include "worker/model/yolo_head.hpp"

#include <cmath>
#include <string>

namespace smartcash::model {

YoloHeadImpl::YoloHeadImpl(const std::array<int64_t, 3>& in_channels, int64_t num_classes_,
                           int64_t anchors, const std::array<int, 3>& strides)
    : num_classes(num_classes_), num_anchors(anchors) {
    const int64_t outputs = anchors * (5 + num_classes);
    for (size_t i = 0; i < predict.size(); ++i) {
        predict[i] = register_module(
            "p" + std::to_string(i + 3),
            torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels[i], outputs, 1)));
    }

    // Start from the priors instead of 0.5 everywhere: about 8 objects in a 640 x 640 image at
    // each scale, and a class probability of about 0.6 / (nc - 0.99). Otherwise the first steps
    // are spent pushing the objectness of every cell down.
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < predict.size(); ++i) {
        auto bias = predict[i]->bias.view({anchors, 5 + num_classes});
        const double cells = std::pow(640.0 / strides[i], 2);
        bias.select(1, 4).add_(std::log(8.0 / cells));
        bias.slice(1, 5).add_(std::log(0.6 / (static_cast<double>(num_classes) - 0.99)));
    }
}

std::vector<torch::Tensor> YoloHeadImpl::forward(const FeaturePyramid& features) {
    std::vector<torch::Tensor> outputs;
    outputs.reserve(predict.size());
    for (size_t i = 0; i < predict.size(); ++i) {
        auto y = predict[i](features[i]);
        const auto batch = y.size(0), height = y.size(2), width = y.size(3);
        outputs.push_back(y.view({batch, num_anchors, 5 + num_classes, height, width})
                              .permute({0, 1, 3, 4, 2})
                              .contiguous());
    }
    return outputs;
}

}  // namespace smartcash::model
