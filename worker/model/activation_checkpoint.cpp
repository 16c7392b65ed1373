#include "worker/model/activation_checkpoint.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <mutex>
#include <utility>
#include <vector>

namespace smartcash::model {
namespace {

/// The states of the generators a block on `device` draws from.
class RngSnapshot {
  public:
    RngSnapshot() = default;

    static RngSnapshot capture(const c10::Device& device) {
        RngSnapshot snapshot;
        snapshot.m_entries.push_back(Entry::of(at::detail::getDefaultCPUGenerator()));
        bool accelerator = device.is_cuda();
#if TORCH_VERSION_MAJOR >= 2
        accelerator = accelerator || device.is_mps();
#endif
        if (accelerator) {
            snapshot.m_entries.push_back(Entry::of(at::globalContext().defaultGenerator(device)));
        }
        return snapshot;
    }

    void restore() const {
        for (const auto& entry : m_entries) {
            at::Generator generator = entry.generator;
            std::lock_guard<std::mutex> lock(generator.mutex());
            generator.set_state(entry.state);
        }
    }

  private:
    struct Entry {
        at::Generator generator;
        torch::Tensor state;

        static Entry of(at::Generator generator) {
            std::lock_guard<std::mutex> lock(generator.mutex());
            auto state = generator.get_state();
            return {std::move(generator), std::move(state)};
        }
    };
    std::vector<Entry> m_entries;
};

/// Puts the generators back as they were when it was made, also on an exception.
class RngRestoreGuard {
  public:
    explicit RngRestoreGuard(const c10::Device& device) : m_saved(RngSnapshot::capture(device)) {}
    ~RngRestoreGuard() { m_saved.restore(); }
    RngRestoreGuard(const RngRestoreGuard&) = delete;
    RngRestoreGuard& operator=(const RngRestoreGuard&) = delete;

  private:
    RngSnapshot m_saved;
};

/// Keeps the running statistics of every batch norm in a module unchanged over a recompute: the
/// original forward already updated them once.
class BatchNormStatsGuard {
  public:
    explicit BatchNormStatsGuard(torch::nn::Module& module) {
        torch::NoGradGuard no_grad;
        for (const auto& child : module.modules(/*include_self=*/true)) {
            auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(child);
            if (!bn || !bn->options.track_running_stats()) {
                continue;
            }
            m_saved.push_back({bn, bn->running_mean.clone(), bn->running_var.clone(),
                               bn->num_batches_tracked.clone()});
        }
    }
    ~BatchNormStatsGuard() {
        torch::NoGradGuard no_grad;
        for (auto& saved : m_saved) {
            saved.bn->running_mean.copy_(saved.mean);
            saved.bn->running_var.copy_(saved.var);
            saved.bn->num_batches_tracked.copy_(saved.count);
        }
    }
    BatchNormStatsGuard(const BatchNormStatsGuard&) = delete;
    BatchNormStatsGuard& operator=(const BatchNormStatsGuard&) = delete;

  private:
    struct Saved {
        std::shared_ptr<torch::nn::BatchNorm2dImpl> bn;
        torch::Tensor mean, var, count;
    };
    std::vector<Saved> m_saved;
};

/// What the backward pass needs besides the saved input; travels in the autograd context.
struct CheckpointState : torch::CustomClassHolder {
    std::shared_ptr<torch::nn::Module> module;
    BlockForward forward;
    RngSnapshot rng;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                                 c10::intrusive_ptr<CheckpointState> state,
                                 const torch::Tensor& input) {
        state->rng = RngSnapshot::capture(input.device());
        ctx->save_for_backward({input});
        torch::Tensor output;
        {
            torch::NoGradGuard no_grad;
            output = state->forward(input);
        }
        ctx->saved_data["state"] = c10::IValue::make_capsule(std::move(state));
        return output;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        auto holder = ctx->saved_data["state"].toCapsule();
        auto* state = static_cast<CheckpointState*>(holder.get());
        const auto input = ctx->get_saved_variables().at(0);
        if (!grad_outputs.at(0).defined()) {
            return {torch::Tensor(), torch::Tensor()};
        }
        auto x = input.detach().requires_grad_(input.requires_grad());
        // The recompute updates the running statistics a second time; they are put back only
        // after the backward below, which still needs the versions the recompute saw.
        BatchNormStatsGuard keep_stats(*state->module);
        torch::Tensor output;
        {
            RngRestoreGuard rewind_after(x.device());
            state->rng.restore();
            torch::AutoGradMode enable_grad(true);
            output = state->forward(x);
        }
        if (output.requires_grad()) {
            // Reentrant backward: accumulates into the block's parameter gradients and x.grad.
            torch::autograd::backward({output}, {grad_outputs[0]});
        }
        return {torch::Tensor(), x.requires_grad() ? x.grad() : torch::Tensor()};
    }
};

}  // namespace

torch::Tensor checkpointed_forward(const std::shared_ptr<torch::nn::Module>& module,
                                   BlockForward forward, const torch::Tensor& input) {
    if (!module->is_training() || !torch::GradMode::is_enabled() || !input.requires_grad()) {
        return forward(input);
    }
    auto state = c10::make_intrusive<CheckpointState>();
    state->module = module;
    state->forward = std::move(forward);
    return CheckpointFunction::apply(std::move(state), input);
}

}  // namespace smartcash::model
