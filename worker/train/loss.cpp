#include "worker/train/loss.hpp"

#include <array>
#include <cmath>

#include "worker/model/detector.hpp"

namespace smartcash::train {

using torch::indexing::Slice;

YoloLoss::YoloLoss(const LossConfig& config, torch::Tensor anchors)
    : m_config(config), m_anchors(std::move(anchors)) {}

torch::Tensor complete_iou(const torch::Tensor& a, const torch::Tensor& b) {
    constexpr double eps = 1e-7;
    auto ax1 = a.select(1, 0) - a.select(1, 2) / 2, ax2 = a.select(1, 0) + a.select(1, 2) / 2;
    auto ay1 = a.select(1, 1) - a.select(1, 3) / 2, ay2 = a.select(1, 1) + a.select(1, 3) / 2;
    auto bx1 = b.select(1, 0) - b.select(1, 2) / 2, bx2 = b.select(1, 0) + b.select(1, 2) / 2;
    auto by1 = b.select(1, 1) - b.select(1, 3) / 2, by2 = b.select(1, 1) + b.select(1, 3) / 2;
    auto inter = (torch::min(ax2, bx2) - torch::max(ax1, bx1)).clamp_min(0) *
                 (torch::min(ay2, by2) - torch::max(ay1, by1)).clamp_min(0);
    auto aw = a.select(1, 2), ah = a.select(1, 3) + eps;
    auto bw = b.select(1, 2), bh = b.select(1, 3) + eps;
    auto uni = aw * ah + bw * bh - inter + eps;
    auto iou = inter / uni;
    auto cw = torch::max(ax2, bx2) - torch::min(ax1, bx1);
    auto ch = torch::max(ay2, by2) - torch::min(ay1, by1);
    auto c2 = cw.pow(2) + ch.pow(2) + eps;
    auto rho2 = (b.select(1, 0) - a.select(1, 0)).pow(2) + (b.select(1, 1) - a.select(1, 1)).pow(2);
    auto v = (4.0 / (M_PI * M_PI)) * (torch::atan(bw / bh) - torch::atan(aw / ah)).pow(2);
    torch::Tensor alpha;
    {
        torch::NoGradGuard no_grad;
        alpha = v / (v - iou + (1.0 + eps));
    }
    return iou - (rho2 / c2 + v * alpha);
}

LossParts YoloLoss::operator()(const std::vector<std::vector<torch::Tensor>>& outputs,
                               const torch::Tensor& all_targets, int img_size) const {
    const auto& layers = model::detection_layers();
    const auto device = outputs.at(0).at(0).device();
    const std::int64_t batch = outputs[0][0].size(0);
    auto targets = all_targets.to(device);
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    auto per_image = torch::zeros({batch}, opts);
    // Per layer: the sums of its weighted box, objectness and class losses, for the logged parts.
    // They are read back to the host once, after the last layer, instead of once each (on an
    // accelerator every read is a synchronisation).
    std::vector<torch::Tensor> layer_sums;
    layer_sums.reserve(layers.size());

    for (std::size_t li = 0; li < layers.size(); ++li) {
        const auto& spec = layers[li];
        double layer_weight = 1.0;
        if (auto it = m_config.layer_weights.find(spec.name); it != m_config.layer_weights.end())
            layer_weight = it->second;
        auto cls_col = targets.select(1, 1);
        auto in_layer =
            (cls_col >= spec.first_class) & (cls_col < spec.first_class + spec.num_classes);
        auto t = targets.index({in_layer});  // [n, 6]

        auto lbox = torch::zeros({batch}, opts);
        auto lobj = torch::zeros({batch}, opts);
        auto lcls = torch::zeros({batch}, opts);
        for (std::size_t si = 0; si < outputs[li].size(); ++si) {
            const auto& p = outputs[li][si];  // [B, A, H, W, 5 + nc]
            const std::int64_t na = p.size(1), h = p.size(2), w = p.size(3);
            const double stride = static_cast<double>(img_size) / static_cast<double>(w);
            auto anchors =
                (m_anchors[static_cast<std::int64_t>(si)].to(opts) / stride);  // [A, 2] grid units
            auto tobj = torch::zeros({batch, na, h, w}, opts);

            if (t.size(0) > 0) {
                auto gain = torch::tensor({static_cast<float>(w), static_cast<float>(h)}, opts);
                auto gxy = t.index({Slice(), Slice(2, 4)}) * gain;  // [n, 2]
                auto gwh = t.index({Slice(), Slice(4, 6)}) * gain;
                // Anchor matching by shape: width and height ratios within anchor_threshold.
                auto ratio = gwh.unsqueeze(0) / anchors.unsqueeze(1);  // [A, n, 2]
                auto worst = torch::max(ratio, 1.0 / ratio).amax(2);   // [A, n]
                auto match = worst < m_config.anchor_threshold;
                auto idx = match.nonzero();  // [m, 2]: anchor, target
                auto a = idx.select(1, 0);
                auto ti = idx.select(1, 1);
                auto mxy = gxy.index_select(0, ti);
                auto mwh = gwh.index_select(0, ti);
                // Besides the centre cell, the two neighbouring cells nearest to the centre also
                // predict the object (their offsets stay within the (-0.5, 1.5) output range).
                auto frac = mxy - mxy.floor();
                auto left = (frac.select(1, 0) < 0.5) & (mxy.select(1, 0) > 1.0);
                auto up = (frac.select(1, 1) < 0.5) & (mxy.select(1, 1) > 1.0);
                auto right = (frac.select(1, 0) > 0.5) & (mxy.select(1, 0) < w - 1.0);
                auto down = (frac.select(1, 1) > 0.5) & (mxy.select(1, 1) < h - 1.0);
                const std::array<torch::Tensor, 5> sel_list = {torch::ones_like(left), left, up,
                                                               right, down};
                const std::array<torch::Tensor, 5> off_list = {
                    torch::zeros({2}, opts), torch::tensor({0.5f, 0.0f}, opts),
                    torch::tensor({0.0f, 0.5f}, opts), torch::tensor({-0.5f, 0.0f}, opts),
                    torch::tensor({0.0f, -0.5f}, opts)};
                std::vector<torch::Tensor> all_a, all_t, all_off;
                for (std::size_t k = 0; k < sel_list.size(); ++k) {
                    auto keep = sel_list[k].nonzero().squeeze(1);
                    all_a.push_back(a.index_select(0, keep));
                    all_t.push_back(ti.index_select(0, keep));
                    all_off.push_back(off_list[k].expand({keep.size(0), 2}));
                }
                auto ca = torch::cat(all_a);
                auto ct = torch::cat(all_t);
                auto coff = torch::cat(all_off);
                auto cxy = gxy.index_select(0, ct);
                auto cwh = gwh.index_select(0, ct);
                auto cell = (cxy - coff).floor();
                auto gi = cell.select(1, 0).clamp(0, w - 1).to(torch::kLong);
                auto gj = cell.select(1, 1).clamp(0, h - 1).to(torch::kLong);
                auto b = t.select(1, 0).index_select(0, ct).to(torch::kLong);
                auto cls = (t.select(1, 1).index_select(0, ct) - spec.first_class).to(torch::kLong);

                if (ca.size(0) > 0) {
                    auto ps = p.index({b, ca, gj, gi});  // [m, 5 + nc]
                    auto pxy = ps.index({Slice(), Slice(0, 2)}).sigmoid() * 2.0 - 0.5;
                    auto pwh = (ps.index({Slice(), Slice(2, 4)}).sigmoid() * 2.0).pow(2) *
                               anchors.index_select(0, ca);
                    auto pbox = torch::cat({pxy, pwh}, 1);
                    auto tbox =
                        torch::cat({cxy - torch::stack({gi, gj}, 1).to(torch::kFloat32), cwh}, 1);
                    auto iou = complete_iou(pbox, tbox);
                    auto count =
                        torch::zeros({batch}, opts).index_add_(0, b, torch::ones_like(iou));
                    auto box_img = torch::zeros({batch}, opts).index_add_(0, b, 1.0 - iou);
                    lbox = lbox + box_img / count.clamp_min(1.0);
                    tobj.index_put_({b, ca, gj, gi}, iou.detach().clamp_min(0.0));
                    if (spec.num_classes > 1) {
                        auto tc = torch::zeros({ca.size(0), spec.num_classes}, opts);
                        tc.index_put_(
                            {torch::arange(
                                 ca.size(0),
                                 torch::TensorOptions().dtype(torch::kLong).device(device)),
                             cls},
                            1.0);
                        auto bce = torch::binary_cross_entropy_with_logits(
                                       ps.index({Slice(), Slice(5, torch::indexing::None)}), tc, {},
                                       {}, at::Reduction::None)
                                       .mean(1);
                        auto cls_img = torch::zeros({batch}, opts).index_add_(0, b, bce);
                        lcls = lcls + cls_img / count.clamp_min(1.0);
                    }
                }
            }
            const double balance =
                si < m_config.obj_balance.size() ? m_config.obj_balance[si] : 1.0;
            auto obj = torch::binary_cross_entropy_with_logits(p.select(4, 4), tobj, {}, {},
                                                               at::Reduction::None)
                           .mean({1, 2, 3});
            lobj = lobj + obj * balance;
        }
        auto wbox = lbox * (m_config.box * layer_weight);
        auto wobj = lobj * (m_config.obj * layer_weight);
        auto wcls = lcls * (m_config.cls * layer_weight);
        per_image = per_image + wbox + wobj + wcls;
        {
            torch::NoGradGuard no_grad;
            layer_sums.push_back(torch::stack({wbox.sum(), wobj.sum(), wcls.sum()}));
        }
    }
    // Summed in double, layer after layer, in the same order as each float sum was read before.
    const auto host = torch::stack(layer_sums).to(torch::kCPU, torch::kFloat32).contiguous();
    const auto sums = host.accessor<float, 2>();
    double box_sum = 0, obj_sum = 0, cls_sum = 0;
    for (std::int64_t li = 0; li < sums.size(0); ++li) {
        box_sum += static_cast<double>(sums[li][0]);
        obj_sum += static_cast<double>(sums[li][1]);
        cls_sum += static_cast<double>(sums[li][2]);
    }
    LossParts parts;
    parts.sum = per_image.sum();
    const double n = static_cast<double>(batch);
    parts.box = box_sum / n;
    parts.obj = obj_sum / n;
    parts.cls = cls_sum / n;
    return parts;
}

}  // namespace smartcash::train
