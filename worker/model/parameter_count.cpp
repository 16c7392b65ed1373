#include "worker/model/parameter_count.hpp"

#include "worker/model/detector.hpp"

namespace smartcash::model {
namespace {

int64_t numel(const std::vector<torch::Tensor>& params) {
    int64_t n = 0;
    for (const auto& p : params) {
        n += p.numel();
    }
    return n;
}

}  // namespace

ParameterCounts count_parameters(DetectorImpl& detector) {
    ParameterCounts counts;
    counts.backbone = numel(detector.backbone_parameters());
    counts.adapters = numel(detector.adapter_parameters());
    counts.neck = numel(detector.fpn_pan_parameters());
    counts.head = numel(detector.head_parameters());
    counts.total = numel(detector.parameters());
    return counts;
}

nlohmann::json to_json(const ParameterCounts& counts) {
    return {{"backbone", counts.backbone},
            {"adapters", counts.adapters},
            {"neck", counts.neck},
            {"head", counts.head},
            {"total", counts.total}};
}

}  // namespace smartcash::model
