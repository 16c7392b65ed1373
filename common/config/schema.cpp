#include "common/config/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <numeric>
#include <optional>
#include <type_traits>

#include "common/listen_address.hpp"
#include "common/units.hpp"

namespace smartcash::config {
namespace {

constexpr const char* mps_high_watermark = "PYTORCH_MPS_HIGH_WATERMARK_RATIO";
constexpr const char* mps_low_watermark = "PYTORCH_MPS_LOW_WATERMARK_RATIO";
// PyTorch's MPS allocator defaults on unified memory, and the highest high ratio it accepts.
constexpr double mps_default_high = 1.7;
constexpr double mps_default_low = 1.4;
constexpr double mps_max_high = 2.0;

void img_size_is_stride_multiple(const Config& c, const Entry& e, const YamlReader& r) {
    if (c.model.img_size % 32 != 0) {
        r.fail(e.at, e.path,
               fmt::format("{} is not a multiple of 32 (the network's largest stride)",
                           c.model.img_size));
    }
}

void metrics_listen_is_an_address(const Config& c, const Entry& e, const YamlReader& r) {
    std::string error;
    if (!c.supervisor.metrics_listen.empty() &&
        !parse_listen_address(c.supervisor.metrics_listen, &error))
        r.fail(e.at, e.path, error);
}

void tier_name_is_simple(const TierConfig& tier, const Entry& e, const YamlReader& r) {
    if (tier.name.empty()) r.fail(e.at, e.path, "the name must not be empty");
    bool simple = std::all_of(tier.name.begin(), tier.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
    if (!simple) {
        r.fail(e.at, e.path,
               "'" + tier.name + "': a tier name may use only letters, digits, '-', '_' and '.'");
    }
}

void device_memory_limit_needs_accelerator(const TierConfig& tier, const Entry& e,
                                           const YamlReader& r) {
    if (tier.device == Device::cpu && tier.device_memory_limit > 0) {
        r.fail(e.at, e.path,
               "caps an accelerator's memory, but this tier's device is cpu (memory_limit bounds "
               "the worker on the CPU)");
    }
}

// PyTorch checks the MPS watermarks only when the first allocation on the device happens,
// against its defaults for the ratio left out; catching a bad pair here saves a failed launch.
void mps_watermarks_are_ordered(const TierConfig& tier, const Entry& e, const YamlReader& r) {
    auto ratio = [&](const char* name) -> std::optional<double> {
        auto it = tier.env.find(name);
        if (it == tier.env.end()) return std::nullopt;
        std::string path = e.path + "." + name;
        return r.number({name, path, r.locate(path), YAML::Node(it->second)}, at_least(0));
    };
    auto high = ratio(mps_high_watermark);
    auto low = ratio(mps_low_watermark);
    const std::string high_path = e.path + "." + mps_high_watermark;
    const std::string low_path = e.path + "." + mps_low_watermark;
    auto text = [&](const char* name) { return tier.env.at(name); };
    if (high && *high > mps_max_high) {
        r.fail_at(high_path,
                  fmt::format("{} is above {}, the most PyTorch's MPS allocator accepts (twice the "
                              "recommended working set)",
                              text(mps_high_watermark), mps_max_high));
    }
    if (high && !low && *high < mps_default_low) {
        r.fail_at(high_path,
                  fmt::format("{} is below PyTorch's default low watermark ratio {}: set {} too "
                              "(at most {})",
                              text(mps_high_watermark), mps_default_low, mps_low_watermark,
                              text(mps_high_watermark)));
    }
    if (low && !high && *low > mps_default_high) {
        r.fail_at(low_path,
                  fmt::format("{} is above PyTorch's default high watermark ratio {}: set {} too",
                              text(mps_low_watermark), mps_default_high, mps_high_watermark));
    }
    if (high && low && *low > *high) {
        r.fail_at(low_path, fmt::format("{} must not exceed {} {}", text(mps_low_watermark),
                                        mps_high_watermark, text(mps_high_watermark)));
    }
}

/// Adds the rows of `fields` to `out`, compared between `a` and `b`.
template <typename Root>
void compare_rows(const std::vector<Field<Root>>& fields, const Root& a, const Root& b,
                  const std::string& prefix, bool resume_only, FieldComparison& out) {
    Root left = a;  // a slot points into a root it may write: compare copies
    Root right = b;
    for (const Field<Root>& field : fields) {
        if (resume_only && !field.resume) continue;
        const std::string key = prefix + field.key;
        bool same = std::visit(
            [&](auto* p) {
                using Member = std::remove_pointer_t<decltype(p)>;
                if constexpr (std::is_same_v<Member, std::vector<TierConfig>>) {
                    auto* q = std::get<decltype(p)>(field.slot(right));
                    for (std::size_t i = 0; i < std::min(p->size(), q->size()); ++i) {
                        FieldComparison tier =
                            compare_fields((*p)[i], (*q)[i], fmt::format("{}[{}].", key, i));
                        out.differ.insert(out.differ.end(), tier.differ.begin(), tier.differ.end());
                        out.equal.insert(out.equal.end(), tier.equal.begin(), tier.equal.end());
                    }
                    return p->size() == q->size();
                } else {
                    return *p == *std::get<decltype(p)>(field.slot(right));
                }
            },
            field.slot(left));
        (same ? out.equal : out.differ).push_back(key);
    }
}

}  // namespace

// The rows: one per key. A new key is a member in common/config.hpp and a row here (and a line
// in docs/config.md); reading, range checks, dump_config and the comparisons follow from it.
const std::vector<Field<Config>>& config_fields() {
    using K = Kind;
    static const std::vector<Field<Config>> fields = {
        {"model.backbone", SMARTCASH_MEMBER(model.backbone), K::choice, any_value(),
         resume_critical},
        {"model.width_multiple", SMARTCASH_MEMBER(model.width_multiple), K::number, above(0),
         resume_critical},
        {"model.depth_multiple", SMARTCASH_MEMBER(model.depth_multiple), K::number, above(0),
         resume_critical},
        {"model.img_size", SMARTCASH_MEMBER(model.img_size), K::integer, at_least(64),
         resume_critical, img_size_is_stride_multiple},
        {"model.drop_connect", SMARTCASH_MEMBER(model.drop_connect), K::number, closed_open(0, 1),
         resume_critical},
        {"model.bn_momentum", SMARTCASH_MEMBER(model.bn_momentum), K::number, closed_open(0, 1)},
        {"model.pretrained", SMARTCASH_MEMBER(model.pretrained), K::path},
        {"model.pretrained_strict", SMARTCASH_MEMBER(model.pretrained_strict), K::boolean},

        {"data.dataset", SMARTCASH_MEMBER(data.dataset), K::dataset},
        {"data.synthetic.images", SMARTCASH_MEMBER(data.synthetic.images), K::integer,
         at_least(10)},
        {"data.synthetic.size", SMARTCASH_MEMBER(data.synthetic.size), K::integer, at_least(64)},
        {"data.synthetic.seed", SMARTCASH_MEMBER(data.synthetic.seed), K::unsigned_integer},
        {"data.bad_labels", SMARTCASH_MEMBER(data.bad_labels), K::choice},
        {"data.cache_images", SMARTCASH_MEMBER(data.cache_images), K::integer, at_least(0)},
        {"data.augment.flip", SMARTCASH_MEMBER(data.augment.flip), K::number, closed(0, 1)},
        {"data.augment.hsv_h", SMARTCASH_MEMBER(data.augment.hsv_h), K::number, closed(0, 1)},
        {"data.augment.hsv_s", SMARTCASH_MEMBER(data.augment.hsv_s), K::number, closed(0, 1)},
        {"data.augment.hsv_v", SMARTCASH_MEMBER(data.augment.hsv_v), K::number, closed(0, 1)},
        {"data.augment.degrees", SMARTCASH_MEMBER(data.augment.degrees), K::number, closed(0, 180)},
        {"data.augment.translate", SMARTCASH_MEMBER(data.augment.translate), K::number,
         closed_open(0, 1)},
        {"data.augment.scale", SMARTCASH_MEMBER(data.augment.scale), K::number, closed_open(0, 1)},

        {"training.effective_batch", SMARTCASH_MEMBER(training.effective_batch), K::integer,
         at_least(1), resume_critical},
        {"training.seed", SMARTCASH_MEMBER(training.seed), K::unsigned_integer},
        {"training.deterministic", SMARTCASH_MEMBER(training.deterministic), K::boolean},
        {"training.phase1.epochs", SMARTCASH_MEMBER(training.phase1.epochs), K::integer,
         at_least(0)},
        {"training.phase1.lr.backbone", SMARTCASH_MEMBER(training.phase1.lr.backbone), K::number,
         at_least(0)},
        {"training.phase1.lr.neck", SMARTCASH_MEMBER(training.phase1.lr.neck), K::number,
         at_least(0)},
        {"training.phase1.lr.head", SMARTCASH_MEMBER(training.phase1.lr.head), K::number,
         at_least(0)},
        {"training.phase2.epochs", SMARTCASH_MEMBER(training.phase2.epochs), K::integer,
         at_least(0)},
        {"training.phase2.lr.backbone", SMARTCASH_MEMBER(training.phase2.lr.backbone), K::number,
         at_least(0)},
        {"training.phase2.lr.neck", SMARTCASH_MEMBER(training.phase2.lr.neck), K::number,
         at_least(0)},
        {"training.phase2.lr.head", SMARTCASH_MEMBER(training.phase2.lr.head), K::number,
         at_least(0)},
        {"training.weight_decay", SMARTCASH_MEMBER(training.weight_decay), K::number, at_least(0)},
        {"training.warmup_steps", SMARTCASH_MEMBER(training.warmup_steps), K::number, at_least(0)},
        {"training.min_lr_ratio", SMARTCASH_MEMBER(training.min_lr_ratio), K::number, closed(0, 1)},
        {"training.grad_clip", SMARTCASH_MEMBER(training.grad_clip), K::number, at_least(0)},
        {"training.beta1", SMARTCASH_MEMBER(training.beta1), K::number, closed_open(0, 1)},
        {"training.beta2", SMARTCASH_MEMBER(training.beta2), K::number, closed_open(0, 1)},
        {"training.loss.box", SMARTCASH_MEMBER(training.loss.box), K::number, at_least(0)},
        {"training.loss.obj", SMARTCASH_MEMBER(training.loss.obj), K::number, at_least(0)},
        {"training.loss.cls", SMARTCASH_MEMBER(training.loss.cls), K::number, at_least(0)},
        {"training.loss.obj_balance", SMARTCASH_MEMBER(training.loss.obj_balance), K::per_scale,
         at_least(0)},
        {"training.loss.layer_weights.layer_1",
         SMARTCASH_MEMBER(training.loss.layer_weights["layer_1"]), K::number, at_least(0)},
        {"training.loss.layer_weights.layer_2",
         SMARTCASH_MEMBER(training.loss.layer_weights["layer_2"]), K::number, at_least(0)},
        {"training.loss.layer_weights.layer_3",
         SMARTCASH_MEMBER(training.loss.layer_weights["layer_3"]), K::number, at_least(0)},
        {"training.loss.anchor_threshold", SMARTCASH_MEMBER(training.loss.anchor_threshold),
         K::number, at_least(1)},
        {"training.eval.conf_threshold", SMARTCASH_MEMBER(training.eval.conf_threshold), K::number,
         closed(0, 1)},
        {"training.eval.nms_iou", SMARTCASH_MEMBER(training.eval.nms_iou), K::number,
         open_closed(0, 1)},
        {"training.eval.max_detections", SMARTCASH_MEMBER(training.eval.max_detections), K::integer,
         at_least(1)},
        {"training.eval.every_epochs", SMARTCASH_MEMBER(training.eval.every_epochs), K::integer,
         at_least(1)},
        {"training.early_stopping.patience", SMARTCASH_MEMBER(training.early_stopping.patience),
         K::integer, at_least(0)},
        {"training.early_stopping.min_delta", SMARTCASH_MEMBER(training.early_stopping.min_delta),
         K::number, at_least(0)},
        {"training.checkpoint_every_steps", SMARTCASH_MEMBER(training.checkpoint_every_steps),
         K::integer, at_least(0)},
        {"training.keep_checkpoints", SMARTCASH_MEMBER(training.keep_checkpoints), K::integer,
         at_least(1)},
        {"training.max_nonfinite_steps", SMARTCASH_MEMBER(training.max_nonfinite_steps), K::integer,
         at_least(1)},

        {"tiers", SMARTCASH_MEMBER(tiers), K::tiers},

        {"supervisor.poll_interval", SMARTCASH_MEMBER(supervisor.poll_interval_seconds),
         K::duration, above(0)},
        {"supervisor.soft_limit_fraction", SMARTCASH_MEMBER(supervisor.soft_limit_fraction),
         K::number, open_closed(0, 1)},
        {"supervisor.min_available", SMARTCASH_MEMBER(supervisor.min_available), K::size},
        {"supervisor.pressure_threshold", SMARTCASH_MEMBER(supervisor.pressure_threshold),
         K::number, closed(0, 100)},
        {"supervisor.pressure_duration", SMARTCASH_MEMBER(supervisor.pressure_seconds), K::duration,
         at_least(0)},
        {"supervisor.heartbeat_timeout", SMARTCASH_MEMBER(supervisor.heartbeat_timeout_seconds),
         K::duration, above(0)},
        {"supervisor.stop_grace", SMARTCASH_MEMBER(supervisor.stop_grace_seconds), K::duration,
         at_least(0)},
        {"supervisor.backoff_floor", SMARTCASH_MEMBER(supervisor.backoff_floor_seconds),
         K::duration, at_least(0)},
        {"supervisor.backoff_cap", SMARTCASH_MEMBER(supervisor.backoff_cap_seconds), K::duration,
         at_least(0)},
        {"supervisor.retry_budget", SMARTCASH_MEMBER(supervisor.retry_budget), K::integer,
         at_least(1)},
        {"supervisor.promotion.enabled", SMARTCASH_MEMBER(supervisor.promotion.enabled),
         K::boolean},
        {"supervisor.promotion.stable_for", SMARTCASH_MEMBER(supervisor.promotion.stable_seconds),
         K::duration, at_least(0)},
        {"supervisor.promotion.headroom", SMARTCASH_MEMBER(supervisor.promotion.headroom),
         K::number, open_closed(0, 1)},
        {"supervisor.promotion.max_wait", SMARTCASH_MEMBER(supervisor.promotion.max_wait_seconds),
         K::duration, at_least(0)},
        {"supervisor.metrics_listen", SMARTCASH_MEMBER(supervisor.metrics_listen), K::name,
         any_value(), false, metrics_listen_is_an_address},
    };
    return fields;
}

const std::vector<Field<TierConfig>>& tier_fields() {
    using K = Kind;
    static const std::vector<Field<TierConfig>> fields = {
        {"name", SMARTCASH_MEMBER(name), K::name, any_value(), false, tier_name_is_simple},
        {"device", SMARTCASH_MEMBER(device), K::choice},
        {"micro_batch", SMARTCASH_MEMBER(micro_batch), K::integer, at_least(1)},
        {"threads", SMARTCASH_MEMBER(threads), K::integer, at_least(1)},
        {"memory_limit", SMARTCASH_MEMBER(memory_limit), K::size},
        {"device_memory_limit", SMARTCASH_MEMBER(device_memory_limit), K::size, any_value(), false,
         device_memory_limit_needs_accelerator},
        {"activation_checkpointing", SMARTCASH_MEMBER(activation_checkpointing), K::boolean},
        {"cleanup", SMARTCASH_MEMBER(cleanup), K::choice},
        {"env", SMARTCASH_MEMBER(env), K::env, any_value(), false, mps_watermarks_are_ordered},
    };
    return fields;
}

const Tree<Config>& config_tree() {
    static const Tree<Config> tree = tree_of(config_fields());
    return tree;
}

const Tree<TierConfig>& tier_tree() {
    static const Tree<TierConfig> tree = tree_of(tier_fields());
    return tree;
}

bool written_on_one_line(const std::string& section_path) {
    static const std::vector<std::string> one_line = {"data.synthetic", "data.augment",
                                                      "training.phase1.lr", "training.phase2.lr",
                                                      "training.loss.layer_weights"};
    return std::find(one_line.begin(), one_line.end(), section_path) != one_line.end();
}

std::vector<TierConfig> default_tiers() {
    struct Row {
        const char* name;
        Device device;
        int micro_batch;
        int threads;
        std::uint64_t memory_limit;
        bool activation_checkpointing;
        Cleanup cleanup;
    };
    static const Row rows[] = {
        {"accelerated", Device::auto_, 4, 4, 12ull << 30, false, Cleanup::aggressive},
        {"cpu", Device::cpu, 2, 2, 8ull << 30, false, Cleanup::aggressive},
        {"minimal", Device::cpu, 1, 2, 4ull << 30, true, Cleanup::extreme},
    };
    std::vector<TierConfig> tiers;
    for (const Row& row : rows) {
        TierConfig tier;
        tier.name = row.name;
        tier.device = row.device;
        tier.micro_batch = row.micro_batch;
        tier.threads = row.threads;
        tier.memory_limit = row.memory_limit;
        tier.activation_checkpointing = row.activation_checkpointing;
        tier.cleanup = row.cleanup;
        tiers.push_back(tier);
    }
    // The seed guide's MPS watermark ratios on the accelerated tier (the low one no higher).
    tiers.front().env = {{mps_high_watermark, "0.7"}, {mps_low_watermark, "0.5"}};
    return tiers;
}

void check_across_keys(Config& config, const YamlReader& r) {
    const TrainingConfig& t = config.training;
    if (t.phase1.epochs + t.phase2.epochs < 1) {
        std::string path = r.written("training.phase2.epochs") ? "training.phase2.epochs"
                                                               : "training.phase1.epochs";
        r.fail_at(path, "training.phase1.epochs + training.phase2.epochs must be at least 1");
    }
    const SupervisorConfig& s = config.supervisor;
    auto not_below = [&](double value, double floor, const char* key, const char* floor_key) {
        if (value < floor) {
            r.fail_at(key, fmt::format("{} is below {} {}", format_duration_exact(value), floor_key,
                                       format_duration_exact(floor)));
        }
    };
    not_below(s.backoff_cap_seconds, s.backoff_floor_seconds, "supervisor.backoff_cap",
              "supervisor.backoff_floor");
    not_below(s.promotion.max_wait_seconds, s.promotion.stable_seconds,
              "supervisor.promotion.max_wait", "supervisor.promotion.stable_for");
    const bool listed = r.written("tiers[0]");  // the file lists its tiers
    for (std::size_t i = 0; i < config.tiers.size(); ++i) {
        TierConfig& tier = config.tiers[i];
        if (t.effective_batch % tier.micro_batch != 0) {
            if (listed) {
                r.fail_at(fmt::format("tiers[{}].micro_batch", i),
                          fmt::format("{} does not divide training.effective_batch {} "
                                      "(accumulation must be a whole number)",
                                      tier.micro_batch, t.effective_batch));
            }
            int common = 1;
            for (const TierConfig& other : config.tiers)
                common = std::lcm(common, other.micro_batch);
            r.fail_at("training.effective_batch",
                      fmt::format("{} is not a multiple of micro_batch {} of the default tier '{}' "
                                  "(accumulation must be a whole number); use a multiple of {} or "
                                  "list the tiers",
                                  t.effective_batch, tier.micro_batch, tier.name, common));
        }
        tier.accumulation = t.effective_batch / tier.micro_batch;
    }
}

FieldComparison compare_fields(const Config& a, const Config& b, bool resume_only) {
    FieldComparison out;
    compare_rows(config_fields(), a, b, "", resume_only, out);
    return out;
}

FieldComparison compare_fields(const TierConfig& a, const TierConfig& b,
                               const std::string& prefix) {
    FieldComparison out;
    compare_rows(tier_fields(), a, b, prefix, false, out);
    return out;
}

const std::vector<EnumName<Backbone>>& names_of(Backbone) {
    static const std::vector<EnumName<Backbone>> names = {
        {"efficientnet_b4", Backbone::efficientnet_b4}, {"cspdarknet", Backbone::cspdarknet}};
    return names;
}

const std::vector<EnumName<Device>>& names_of(Device) {
    static const std::vector<EnumName<Device>> names = {{"auto", Device::auto_},
                                                        {"cpu", Device::cpu},
                                                        {"cuda", Device::cuda},
                                                        {"mps", Device::mps}};
    return names;
}

const std::vector<EnumName<BadLabelPolicy>>& names_of(BadLabelPolicy) {
    static const std::vector<EnumName<BadLabelPolicy>> names = {{"fail", BadLabelPolicy::fail},
                                                                {"skip", BadLabelPolicy::skip}};
    return names;
}

const std::vector<EnumName<Cleanup>>& names_of(Cleanup) {
    static const std::vector<EnumName<Cleanup>> names = {{"normal", Cleanup::normal},
                                                         {"aggressive", Cleanup::aggressive},
                                                         {"extreme", Cleanup::extreme}};
    return names;
}

}  // namespace smartcash::config
