#include "worker/train/optimizer.hpp"

#include <cmath>

namespace smartcash::train {

std::unique_ptr<torch::optim::AdamW> make_optimizer(model::DetectorImpl& model,
                                                    const TrainingConfig& config) {
    std::array<std::vector<torch::Tensor>, 3> roles = {
        model.backbone_parameters(), model.neck_parameters(), model.head_parameters()};
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (auto& params : roles) {
        std::vector<torch::Tensor> decay, no_decay;
        for (auto& p : params) (p.dim() > 1 ? decay : no_decay).push_back(p);
        auto opts = [&](double wd) {
            auto o = std::make_unique<torch::optim::AdamWOptions>(0.0);
            o->betas(std::make_tuple(config.beta1, config.beta2)).weight_decay(wd).eps(1e-8);
            return o;
        };
        groups.emplace_back(decay, opts(config.weight_decay));
        groups.emplace_back(no_decay, opts(0.0));
    }
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(0.0));
}

double schedule_factor(const TrainingConfig& config, std::int64_t step_in_phase,
                       std::int64_t phase_steps) {
    const double warmup = std::max(0.0, config.warmup_steps);
    const double s = static_cast<double>(step_in_phase);
    if (warmup > 0 && s < warmup) return (s + 1.0) / (warmup + 1.0);
    const double span = std::max(1.0, static_cast<double>(phase_steps) - warmup);
    const double progress = std::clamp((s - warmup) / span, 0.0, 1.0);
    const double floor = config.min_lr_ratio;
    return floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

double apply_learning_rates(torch::optim::AdamW& optimizer, const TrainingConfig& config, int phase,
                            std::int64_t step_in_phase, std::int64_t phase_steps) {
    const GroupLr& lr = phase == 1 ? config.phase1.lr : config.phase2.lr;
    const double f = schedule_factor(config, step_in_phase, phase_steps);
    const double base[3] = {phase == 1 ? 0.0 : lr.backbone, lr.neck, lr.head};
    auto& groups = optimizer.param_groups();
    for (int g = 0; g < group_count && g < static_cast<int>(groups.size()); ++g) {
        static_cast<torch::optim::AdamWOptions&>(groups[static_cast<std::size_t>(g)].options())
            .lr(base[g / 2] * f);
    }
    return base[2] * f;
}

void set_backbone_trainable(model::DetectorImpl& model, bool trainable) {
    for (auto& p : model.backbone_parameters()) {
        p.set_requires_grad(trainable);
        if (!trainable) p.mutable_grad() = torch::Tensor();
    }
}

}  // namespace smartcash::train
