#include "worker/inference/decode.hpp"

#include <algorithm>
#include <numeric>

#include "worker/eval/nms.hpp"
#include "worker/model/detector.hpp"

namespace smartcash::train {

using torch::indexing::Slice;

std::vector<eval::Detection> decode_detections(
    const std::vector<std::vector<torch::Tensor>>& outputs, const torch::Tensor& anchors_px,
    int img_size, const DecodeOptions& options, int image_offset) {
    torch::NoGradGuard no_grad;
    const auto& layers = model::detection_layers();
    const std::int64_t batch = outputs[0][0].size(0);
    // Per image: rows (x1, y1, x2, y2, score, class).
    std::vector<std::vector<torch::Tensor>> rows(static_cast<std::size_t>(batch));
    for (std::size_t li = 0; li < outputs.size(); ++li) {
        for (std::size_t si = 0; si < outputs[li].size(); ++si) {
            auto p = outputs[li][si]
                         .detach()
                         .to(torch::kCPU, torch::kFloat32)
                         .sigmoid();  // [B,A,H,W,5+nc]
            const std::int64_t na = p.size(1), h = p.size(2), w = p.size(3);
            const float stride = static_cast<float>(img_size) / static_cast<float>(w);
            auto gy = torch::arange(h, torch::kFloat32).view({1, 1, h, 1}).expand({1, na, h, w});
            auto gx = torch::arange(w, torch::kFloat32).view({1, 1, 1, w}).expand({1, na, h, w});
            auto anc = anchors_px[static_cast<std::int64_t>(si)].to(torch::kCPU,
                                                                    torch::kFloat32);  // [A,2]
            auto aw = anc.select(1, 0).view({1, na, 1, 1});
            auto ah = anc.select(1, 1).view({1, na, 1, 1});
            auto cx = (p.select(4, 0) * 2.0 - 0.5 + gx) * stride;
            auto cy = (p.select(4, 1) * 2.0 - 0.5 + gy) * stride;
            auto bw = (p.select(4, 2) * 2.0).pow(2) * aw;
            auto bh = (p.select(4, 3) * 2.0).pow(2) * ah;
            auto obj = p.select(4, 4);
            auto cls = p.index({"...", Slice(5, torch::indexing::None)});
            auto best = cls.max(-1);
            auto score = obj * std::get<0>(best);
            auto cls_id =
                std::get<1>(best).to(torch::kFloat32) + static_cast<float>(layers[li].first_class);
            auto all = torch::stack(
                           {cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, score, cls_id}, -1)
                           .view({batch, -1, 6});
            for (std::int64_t b = 0; b < batch; ++b) {
                auto r = all[b];
                auto keep = (r.select(1, 4) > options.conf_threshold).nonzero().squeeze(1);
                if (keep.numel() > 0)
                    rows[static_cast<std::size_t>(b)].push_back(r.index_select(0, keep));
            }
        }
    }
    std::vector<eval::Detection> out;
    for (std::int64_t b = 0; b < batch; ++b) {
        auto& parts = rows[static_cast<std::size_t>(b)];
        if (parts.empty()) continue;
        auto r = torch::cat(parts);
        if (r.size(0) > static_cast<std::int64_t>(options.max_candidates)) {
            auto top = r.select(1, 4).topk(static_cast<std::int64_t>(options.max_candidates));
            r = r.index_select(0, std::get<1>(top));
        }
        r = r.contiguous();
        const auto n = static_cast<std::size_t>(r.size(0));
        const float* d = r.data_ptr<float>();
        std::vector<eval::Box> boxes(n);
        std::vector<float> scores(n);
        std::vector<int> classes(n);
        for (std::size_t i = 0; i < n; ++i) {
            const float* row = d + i * 6;
            auto clampf = [&](float v) {
                return std::clamp(v, 0.0f, static_cast<float>(img_size));
            };
            boxes[i] = {clampf(row[0]), clampf(row[1]), clampf(row[2]), clampf(row[3])};
            scores[i] = row[4];
            classes[i] = static_cast<int>(row[5]);
        }
        for (std::size_t k :
             eval::nms(boxes, scores, classes, options.nms_iou, options.max_detections)) {
            out.push_back({static_cast<int>(b) + image_offset, classes[k], scores[k], boxes[k]});
        }
    }
    return out;
}

}  // namespace smartcash::train
