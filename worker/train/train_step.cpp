#include "worker/train/train_step.hpp"

#include <algorithm>
#include <cmath>

#include "worker/device/step_memory.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker/train/batch.hpp"

namespace smartcash::train {

StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                      const YoloLoss& loss, const std::vector<data::Sample>& samples,
                      int micro_batch, int img_size, double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro, const StepShare& share) {
    StepResult result;
    const auto n = samples.size();
    const double effective = static_cast<double>(
        share.global_batch > 0 ? static_cast<std::size_t>(share.global_batch) : n);
    optimizer.zero_grad();
    for (std::size_t start = 0; start < n; start += static_cast<std::size_t>(micro_batch)) {
        if (share.before_micro)
            share.before_micro(share.first_index + static_cast<std::int64_t>(start));
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
    if (share.group) {
        // One all-reduce of the flat gradient: the sum of the ranks' partial sums is the gradient
        // of the whole step, identical on every rank, so clipping, the non-finite guard and the
        // update below decide the same everywhere.
        std::vector<torch::Tensor> grads;
        grads.reserve(with_grad.size());
        for (auto& p : with_grad) grads.push_back(p.grad());
        share.group->allreduce_sum(grads, "gradients");
        const auto sums = share.group->allreduce_sum(
            {result.loss, result.box, result.obj, result.cls}, "loss figures");
        result.loss = sums[0];
        result.box = sums[1];
        result.obj = sums[2];
        result.cls = sums[3];
    }
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
    if (share.group) {
        // Each rank's BatchNorm statistics saw only its shard: their average keeps the ranks'
        // models identical (close to, not exactly, one process's statistics).
        std::vector<torch::Tensor> floating;
        for (auto& b : model.buffers())
            if (b.is_floating_point()) floating.push_back(b);
        share.group->allreduce_sum(floating, "normalisation statistics");
        torch::NoGradGuard no_grad;
        const double world = share.group->world_size();
        for (auto& b : floating) b.div_(world);
    }
    result.completed = true;
    return result;
}

}  // namespace smartcash::train
