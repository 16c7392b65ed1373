#include "worker/train/train_step.hpp"

#include <algorithm>
#include <cmath>

#include "worker/device/step_memory.hpp"
#include "worker/train/batch.hpp"

namespace smartcash::train {

StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                      const YoloLoss& loss, const std::vector<data::Sample>& samples,
                      int micro_batch, int img_size, double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro) {
    StepResult result;
    const auto n = samples.size();
    const double effective = static_cast<double>(n);
    optimizer.zero_grad();
    for (std::size_t start = 0; start < n; start += static_cast<std::size_t>(micro_batch)) {
        std::vector<data::Sample> part(
            samples.begin() + static_cast<std::ptrdiff_t>(start),
            samples.begin() + static_cast<std::ptrdiff_t>(std::min(n, start + micro_batch)));
        auto batch = collate(part, device);
        auto outputs = model.forward(batch.images);
        auto parts = loss(outputs, batch.targets, img_size);
        (parts.sum / effective).backward();
        const double share = static_cast<double>(part.size()) / effective;
        result.loss += (parts.box + parts.obj + parts.cls) * share;
        result.box += parts.box * share;
        result.obj += parts.obj * share;
        result.cls += parts.cls * share;
        ++result.micro_batches;
        const bool last = start + static_cast<std::size_t>(micro_batch) >= n;
        if (!last && between_micro && !between_micro()) {
            optimizer.zero_grad();
            return result;
        }
    }
    std::vector<torch::Tensor> with_grad;
    for (auto& group : optimizer.param_groups())
        for (auto& p : group.params())
            if (p.grad().defined()) with_grad.push_back(p);
    if (grad_clip > 0) {
        result.grad_norm = torch::nn::utils::clip_grad_norm_(with_grad, grad_clip);
    } else if (!with_grad.empty()) {
        torch::NoGradGuard no_grad;
        std::vector<torch::Tensor> norms;
        for (auto& p : with_grad) norms.push_back(p.grad().norm());
        result.grad_norm = torch::stack(norms).norm().item<double>();
    }
    if (!std::isfinite(result.loss) || !std::isfinite(result.grad_norm)) {
        // One bad batch (or the start of a divergence): an update from it would put NaN into
        // the weights and the optimizer state for good. The step is skipped instead.
        optimizer.zero_grad();
        result.skipped = true;
        result.completed = true;
        return result;
    }
    optimizer.step();
    release_gradients(optimizer);
    result.completed = true;
    return result;
}

}  // namespace smartcash::train
