#include "common/config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>
#include <utility>

#include "common/atomic_file.hpp"
#include "common/sha256.hpp"
#include "common/units.hpp"

namespace smartcash {
namespace {

constexpr const char* mps_high_watermark = "PYTORCH_MPS_HIGH_WATERMARK_RATIO";
constexpr const char* mps_low_watermark = "PYTORCH_MPS_LOW_WATERMARK_RATIO";
// PyTorch's MPS allocator defaults on unified memory, and the highest high ratio it accepts.
constexpr double mps_default_high = 1.7;
constexpr double mps_default_low = 1.4;
constexpr double mps_max_high = 2.0;

std::string compose_message(const std::string& file, int line, int column,
                            const std::string& key_path, const std::string& what) {
    std::string out = file;
    if (line > 0) out += fmt::format(":{}:{}", line, column);
    out += ": ";
    if (!key_path.empty()) out += key_path + ": ";
    return out + what;
}

/// A 1-based position in the file; {0, 0} when unknown.
struct Where {
    int line = 0;
    int column = 0;
};

Where where_of(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0) return {};
    return {mark.line + 1, mark.column + 1};
}

/// One key of a mapping, with where the key was written and its full key path.
struct Entry {
    std::string key;
    std::string path;
    Where at;
    YAML::Node value;
};

/// The keys present in one mapping of the file, already checked against the valid ones.
struct Section {
    std::string path;
    Where at;
    std::vector<Entry> entries;

    const Entry* get(const std::string& key) const {
        for (const Entry& e : entries) {
            if (e.key == key) return &e;
        }
        return nullptr;
    }
};

/// A closed/open interval for range checks, rendered in messages as "must be in (0, 1]".
struct Range {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    bool lo_open = false;
    bool hi_open = false;

    bool contains(double v) const {
        if (lo_open ? !(v > lo) : !(v >= lo)) return false;
        if (hi_open ? !(v < hi) : !(v <= hi)) return false;
        return true;
    }
    std::string describe() const {
        if (std::isinf(hi)) return fmt::format("must be {} {}", lo_open ? ">" : ">=", lo);
        return fmt::format("must be in {}{}, {}{}", lo_open ? "(" : "[", lo, hi,
                           hi_open ? ")" : "]");
    }
};

Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, true}; }
Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, true}; }
Range closed(double lo, double hi) { return {lo, hi, false, false}; }
Range closed_open(double lo, double hi) { return {lo, hi, false, true}; }
Range open_closed(double lo, double hi) { return {lo, hi, true, false}; }

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above_cell = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above_cell;
        }
    }
    return row[b.size()];
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// How a node looks, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Scalar:
            return "'" + node.Scalar() + "'";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a map";
        default:
            return "nothing";
    }
}

/// Shortest text that reads back as the same double.
std::string number_text(double v) { return fmt::format("{}", v); }

template <typename Enum>
struct EnumName {
    const char* name;
    Enum value;
};

constexpr EnumName<Backbone> backbone_names[] = {{"efficientnet_b4", Backbone::efficientnet_b4},
                                                 {"cspdarknet", Backbone::cspdarknet}};
constexpr EnumName<Device> device_names[] = {
    {"auto", Device::auto_}, {"cpu", Device::cpu}, {"cuda", Device::cuda}, {"mps", Device::mps}};
constexpr EnumName<BadLabelPolicy> bad_label_names[] = {{"fail", BadLabelPolicy::fail},
                                                        {"skip", BadLabelPolicy::skip}};
constexpr EnumName<Cleanup> cleanup_names[] = {{"normal", Cleanup::normal},
                                               {"aggressive", Cleanup::aggressive},
                                               {"extreme", Cleanup::extreme}};

template <typename Enum, std::size_t N>
const char* enum_name(const EnumName<Enum> (&names)[N], Enum value) {
    for (const auto& n : names) {
        if (n.value == value) return n.name;
    }
    return "?";
}

std::vector<TierConfig> default_tiers() {
    TierConfig accelerated;
    accelerated.name = "accelerated";
    accelerated.device = Device::auto_;
    accelerated.micro_batch = 4;
    accelerated.threads = 4;
    accelerated.memory_limit = 12ull << 30;
    accelerated.cleanup = Cleanup::aggressive;
    accelerated.env = {{mps_high_watermark, "0.7"}, {mps_low_watermark, "0.5"}};

    TierConfig cpu;
    cpu.name = "cpu";
    cpu.device = Device::cpu;
    cpu.micro_batch = 2;
    cpu.threads = 2;
    cpu.memory_limit = 8ull << 30;
    cpu.cleanup = Cleanup::aggressive;

    TierConfig minimal;
    minimal.name = "minimal";
    minimal.device = Device::cpu;
    minimal.micro_batch = 1;
    minimal.threads = 2;
    minimal.memory_limit = 4ull << 30;
    minimal.activation_checkpointing = true;
    minimal.cleanup = Cleanup::extreme;
    return {accelerated, cpu, minimal};
}

/// Turns a parsed YAML document into a validated Config, failing with ConfigError at the first
/// problem.
class Loader {
  public:
    Loader(std::string file, std::filesystem::path base_dir)
        : m_file(std::move(file)), m_base_dir(std::move(base_dir)) {}

    Config load(const std::string& text) {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            Where at = where_of(e.mark);
            throw ConfigError(m_file, at.line, at.column, "", "YAML syntax error: " + e.msg);
        }
        Config config;
        config.tiers = default_tiers();
        if (root.IsNull()) return finish(config, /*explicit_tiers=*/false);
        if (!root.IsMap()) {
            fail(where_of(root.Mark()), "",
                 "expected a map of sections (model, data, training, tiers, supervisor), got " +
                     describe(root));
        }
        Section top =
            section(root, "", {1, 1}, {"model", "data", "training", "tiers", "supervisor"});
        if (const Entry* e = top.get("model")) read_model(*e, config.model);
        if (const Entry* e = top.get("data")) read_data(*e, config.data);
        if (const Entry* e = top.get("training")) read_training(*e, config.training);
        bool explicit_tiers = false;
        if (const Entry* e = top.get("tiers")) {
            if (!e->value.IsNull()) {
                config.tiers = read_tiers(*e);
                explicit_tiers = true;
            }
        }
        if (const Entry* e = top.get("supervisor")) read_supervisor(*e, config.supervisor);
        return finish(config, explicit_tiers);
    }

  private:
    [[noreturn]] void fail(Where at, const std::string& path, const std::string& message) const {
        throw ConfigError(m_file, at.line, at.column, path, message);
    }

    /// Where a key path was written, or its nearest written parent (for checks that involve
    /// several keys, some of which may be defaults).
    Where locate(const std::string& path) const {
        std::string p = path;
        while (!p.empty()) {
            auto it = m_where.find(p);
            if (it != m_where.end()) return it->second;
            auto cut = p.find_last_of(".[");
            if (cut == std::string::npos) break;
            p.resize(cut);
        }
        return {};
    }

    static std::string child_path(const std::string& parent, const std::string& key) {
        return parent.empty() ? key : parent + "." + key;
    }

    Section section(const YAML::Node& node, const std::string& path, Where at,
                    const std::vector<std::string>& valid) {
        Section s{path, at, {}};
        if (node.IsNull()) return s;  // "model:" with nothing under it: all defaults
        if (!node.IsMap()) {
            fail(at, path, "expected a map with keys " + join(valid) + ", got " + describe(node));
        }
        for (auto it = node.begin(); it != node.end(); ++it) {
            Where key_at = where_of(it->first.Mark());
            if (!it->first.IsScalar()) fail(key_at, path, "a key must be a plain name");
            std::string key = it->first.Scalar();
            std::string key_path = child_path(path, key);
            if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
                std::string message = "unknown key '" + key + "'";
                for (const auto& candidate : valid) {
                    if (edit_distance(lower(key), candidate) <= 2) {
                        message += " (did you mean '" + candidate + "'?)";
                        break;
                    }
                }
                fail(key_at, key_path,
                     message + "; valid keys " +
                         (path.empty() ? std::string("at the top level") : "in " + path) +
                         " are: " + join(valid));
            }
            if (const Entry* first = s.get(key)) {
                fail(key_at, key_path,
                     fmt::format("duplicate key (first given at line {})", first->at.line));
            }
            s.entries.push_back({key, key_path, key_at, it->second});
            m_where[key_path] = key_at;
        }
        return s;
    }

    Section section(const Entry& e, const std::vector<std::string>& valid) {
        return section(e.value, e.path, e.at, valid);
    }

    std::string scalar(const Entry& e, const char* expected) const {
        if (!e.value.IsScalar())
            fail(e.at, e.path, std::string("expected ") + expected + ", got " + describe(e.value));
        return e.value.Scalar();
    }

    long long integer(const Entry& e, long long min, long long max = INT_MAX) const {
        std::string text = scalar(e, "an integer");
        std::size_t i = (text.size() > 1 && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
        bool digits =
            i < text.size() &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i), text.end(),
                        [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
        if (!digits) fail(e.at, e.path, "expected an integer, got '" + text + "'");
        errno = 0;
        long long v = std::strtoll(text.c_str(), nullptr, 10);
        if (errno == ERANGE || v < min || v > max) {
            fail(e.at, e.path,
                 max == INT_MAX
                     ? fmt::format("{} is out of range: must be >= {}", text, min)
                     : fmt::format("{} is out of range: must be in [{}, {}]", text, min, max));
        }
        return v;
    }

    void read(const Section& s, const char* key, int& out, long long min) const {
        if (const Entry* e = s.get(key)) out = static_cast<int>(integer(*e, min));
    }

    void read(const Section& s, const char* key, std::uint64_t& out) const {
        const Entry* e = s.get(key);
        if (!e) return;
        std::string text = scalar(*e, "a non-negative integer");
        bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
        errno = 0;
        unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE) {
            fail(e->at, e->path, "expected a non-negative integer, got '" + text + "'");
        }
        out = v;
    }

    double number(const Entry& e, const Range& range) const {
        std::string text = scalar(e, "a number");
        char* end = nullptr;
        errno = 0;
        double v = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
        bool ok = !text.empty() && end == text.c_str() + text.size() && errno != ERANGE &&
                  std::isfinite(v) && !std::isspace(static_cast<unsigned char>(text[0]));
        if (!ok) fail(e.at, e.path, "expected a number, got '" + text + "'");
        if (!range.contains(v)) {
            fail(e.at, e.path, fmt::format("{} is out of range: {}", text, range.describe()));
        }
        return v;
    }

    void read(const Section& s, const char* key, double& out, const Range& range) const {
        if (const Entry* e = s.get(key)) out = number(*e, range);
    }

    void read(const Section& s, const char* key, bool& out) const {
        const Entry* e = s.get(key);
        if (!e) return;
        std::string text = lower(scalar(*e, "true or false"));
        if (text == "true" || text == "yes" || text == "on") {
            out = true;
        } else if (text == "false" || text == "no" || text == "off") {
            out = false;
        } else {
            fail(e->at, e->path, "expected true or false, got '" + e->value.Scalar() + "'");
        }
    }

    void read_size(const Section& s, const char* key, std::uint64_t& out) const {
        const Entry* e = s.get(key);
        if (!e) return;
        std::string text = scalar(*e, "a byte size");
        try {
            out = parse_size(text);
        } catch (const std::invalid_argument& error) {
            fail(e->at, e->path, error.what());
        }
    }

    void read_duration(const Section& s, const char* key, double& out, const Range& range) const {
        const Entry* e = s.get(key);
        if (!e) return;
        std::string text = scalar(*e, "a duration");
        try {
            out = parse_duration_seconds(text);
        } catch (const std::invalid_argument& error) {
            fail(e->at, e->path, error.what());
        }
        if (!range.contains(out)) {
            fail(e->at, e->path,
                 fmt::format("{} is out of range: {} seconds", text, range.describe()));
        }
    }

    template <typename Enum, std::size_t N>
    void read_enum(const Section& s, const char* key, Enum& out,
                   const EnumName<Enum> (&names)[N]) const {
        const Entry* e = s.get(key);
        if (!e) return;
        std::vector<std::string> valid;
        for (const auto& n : names) valid.push_back(n.name);
        std::string text = scalar(*e, ("one of " + join(valid)).c_str());
        for (const auto& n : names) {
            if (text == n.name) {
                out = n.value;
                return;
            }
        }
        fail(e->at, e->path, "expected one of " + join(valid) + ", got '" + text + "'");
    }

    void read_model(const Entry& entry, ModelConfig& m) {
        Section s = section(
            entry, {"backbone", "width_multiple", "depth_multiple", "img_size", "drop_connect",
                    "bn_momentum"});
        read_enum(s, "backbone", m.backbone, backbone_names);
        read(s, "width_multiple", m.width_multiple, above(0));
        read(s, "depth_multiple", m.depth_multiple, above(0));
        read(s, "img_size", m.img_size, 64);
        if (m.img_size % 32 != 0) {
            const Entry* e = s.get("img_size");
            fail(e->at, e->path,
                 fmt::format("{} is not a multiple of 32 (the network's largest stride)",
                             m.img_size));
        }
        read(s, "drop_connect", m.drop_connect, closed_open(0, 1));
        read(s, "bn_momentum", m.bn_momentum, closed_open(0, 1));
    }

    void read_data(const Entry& entry, DataConfig& d) {
        Section s =
            section(entry, {"dataset", "synthetic", "bad_labels", "cache_images", "augment"});
        if (const Entry* e = s.get("dataset")) {
            std::string text = scalar(*e, "'synthetic' or a path");
            if (text.empty()) fail(e->at, e->path, "expected 'synthetic' or a path, got ''");
            if (text == "synthetic") {
                d.dataset = text;
            } else {
                std::filesystem::path p(text);
                if (p.is_relative()) p = m_base_dir / p;
                d.dataset = p.lexically_normal().string();
            }
        }
        if (const Entry* e = s.get("synthetic")) {
            Section syn = section(*e, {"images", "size", "seed"});
            read(syn, "images", d.synthetic.images, 10);
            read(syn, "size", d.synthetic.size, 64);
            read(syn, "seed", d.synthetic.seed);
        }
        read_enum(s, "bad_labels", d.bad_labels, bad_label_names);
        read(s, "cache_images", d.cache_images, 0);
        if (const Entry* e = s.get("augment")) {
            Section a =
                section(*e, {"flip", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale"});
            read(a, "flip", d.augment.flip, closed(0, 1));
            read(a, "hsv_h", d.augment.hsv_h, closed(0, 1));
            read(a, "hsv_s", d.augment.hsv_s, closed(0, 1));
            read(a, "hsv_v", d.augment.hsv_v, closed(0, 1));
            read(a, "degrees", d.augment.degrees, closed(0, 180));
            read(a, "translate", d.augment.translate, closed_open(0, 1));
            read(a, "scale", d.augment.scale, closed_open(0, 1));
        }
    }

    void read_phase(const Section& training, const char* key, PhaseConfig& p) {
        const Entry* e = training.get(key);
        if (!e) return;
        Section s = section(*e, {"epochs", "lr"});
        read(s, "epochs", p.epochs, 0);
        if (const Entry* lr = s.get("lr")) {
            Section l = section(*lr, {"backbone", "neck", "head"});
            read(l, "backbone", p.lr.backbone, at_least(0));
            read(l, "neck", p.lr.neck, at_least(0));
            read(l, "head", p.lr.head, at_least(0));
        }
    }

    void read_training(const Entry& entry, TrainingConfig& t) {
        Section s =
            section(entry, {"effective_batch", "seed", "deterministic", "phase1", "phase2",
                            "weight_decay", "warmup_steps", "min_lr_ratio", "grad_clip", "beta1",
                            "beta2", "loss", "eval", "early_stopping", "checkpoint_every_steps",
                            "keep_checkpoints", "max_nonfinite_steps"});
        read(s, "effective_batch", t.effective_batch, 1);
        read(s, "seed", t.seed);
        read(s, "deterministic", t.deterministic);
        read_phase(s, "phase1", t.phase1);
        read_phase(s, "phase2", t.phase2);
        read(s, "weight_decay", t.weight_decay, at_least(0));
        read(s, "warmup_steps", t.warmup_steps, at_least(0));
        read(s, "min_lr_ratio", t.min_lr_ratio, closed(0, 1));
        read(s, "grad_clip", t.grad_clip, at_least(0));
        read(s, "beta1", t.beta1, closed_open(0, 1));
        read(s, "beta2", t.beta2, closed_open(0, 1));
        if (const Entry* e = s.get("loss")) read_loss(*e, t.loss);
        if (const Entry* e = s.get("eval")) {
            Section ev =
                section(*e, {"conf_threshold", "nms_iou", "max_detections", "every_epochs"});
            read(ev, "conf_threshold", t.eval.conf_threshold, closed(0, 1));
            read(ev, "nms_iou", t.eval.nms_iou, open_closed(0, 1));
            read(ev, "max_detections", t.eval.max_detections, 1);
            read(ev, "every_epochs", t.eval.every_epochs, 1);
        }
        if (const Entry* e = s.get("early_stopping")) {
            Section es = section(*e, {"patience", "min_delta"});
            read(es, "patience", t.early_stopping.patience, 0);
            read(es, "min_delta", t.early_stopping.min_delta, at_least(0));
        }
        read(s, "checkpoint_every_steps", t.checkpoint_every_steps, 0);
        read(s, "keep_checkpoints", t.keep_checkpoints, 1);
        read(s, "max_nonfinite_steps", t.max_nonfinite_steps, 1);
    }

    void read_loss(const Entry& entry, LossConfig& l) {
        Section s = section(
            entry, {"box", "obj", "cls", "obj_balance", "layer_weights", "anchor_threshold"});
        read(s, "box", l.box, at_least(0));
        read(s, "obj", l.obj, at_least(0));
        read(s, "cls", l.cls, at_least(0));
        if (const Entry* e = s.get("obj_balance")) {
            if (!e->value.IsSequence() || e->value.size() != 3) {
                std::string got = e->value.IsSequence()
                                      ? fmt::format("a list of {}", e->value.size())
                                      : describe(e->value);
                fail(e->at, e->path,
                     "expected a list of exactly 3 numbers (scales P3, P4, P5), got " + got);
            }
            std::vector<double> values;
            for (std::size_t i = 0; i < 3; ++i) {
                YAML::Node item = e->value[i];
                Entry element{"", fmt::format("{}[{}]", e->path, i), where_of(item.Mark()), item};
                values.push_back(number(element, at_least(0)));
            }
            l.obj_balance = values;
        }
        if (const Entry* e = s.get("layer_weights")) {
            Section w = section(*e, {"layer_1", "layer_2", "layer_3"});
            for (const char* layer : {"layer_1", "layer_2", "layer_3"}) {
                read(w, layer, l.layer_weights[layer], at_least(0));
            }
        }
        read(s, "anchor_threshold", l.anchor_threshold, at_least(1));
    }

    std::vector<TierConfig> read_tiers(const Entry& entry) {
        if (!entry.value.IsSequence()) {
            fail(entry.at, entry.path, "expected a list of tiers, got " + describe(entry.value));
        }
        if (entry.value.size() == 0) fail(entry.at, entry.path, "at least one tier is needed");
        std::vector<TierConfig> tiers;
        std::map<std::string, int> first_line;
        for (std::size_t i = 0; i < entry.value.size(); ++i) {
            YAML::Node node = entry.value[i];
            std::string path = fmt::format("tiers[{}]", i);
            Where at = where_of(node.Mark());
            m_where[path] = at;
            if (!node.IsMap()) fail(at, path, "expected a map (a tier), got " + describe(node));
            Section s =
                section(node, path, at,
                        {"name", "device", "micro_batch", "threads", "memory_limit",
                         "device_memory_limit", "activation_checkpointing", "cleanup", "env"});
            TierConfig tier;
            const Entry* name = s.get("name");
            if (!name) fail(at, path, "a tier needs a name");
            tier.name = scalar(*name, "a name");
            if (tier.name.empty()) fail(name->at, name->path, "the name must not be empty");
            bool simple = std::all_of(tier.name.begin(), tier.name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                       c == '.';
            });
            if (!simple) {
                fail(name->at, name->path,
                     "'" + tier.name +
                         "': a tier name may use only letters, digits, '-', '_' and '.'");
            }
            if (auto seen = first_line.find(tier.name); seen != first_line.end()) {
                fail(name->at, name->path,
                     fmt::format("duplicate tier name '{}' (first used at line {})", tier.name,
                                 seen->second));
            }
            first_line[tier.name] = name->at.line;
            read_enum(s, "device", tier.device, device_names);
            read(s, "micro_batch", tier.micro_batch, 1);
            read(s, "threads", tier.threads, 1);
            read_size(s, "memory_limit", tier.memory_limit);
            read_size(s, "device_memory_limit", tier.device_memory_limit);
            if (const Entry* e = s.get("device_memory_limit");
                e && tier.device == Device::cpu && tier.device_memory_limit > 0) {
                fail(e->at, e->path,
                     "caps an accelerator's memory, but this tier's device is cpu (memory_limit "
                     "bounds the worker on the CPU)");
            }
            read(s, "activation_checkpointing", tier.activation_checkpointing);
            read_enum(s, "cleanup", tier.cleanup, cleanup_names);
            if (const Entry* e = s.get("env")) tier.env = read_env(*e);
            tiers.push_back(std::move(tier));
        }
        return tiers;
    }

    std::map<std::string, std::string> read_env(const Entry& entry) {
        std::map<std::string, std::string> env;
        if (entry.value.IsNull()) return env;
        if (!entry.value.IsMap()) {
            fail(entry.at, entry.path,
                 "expected a map of environment variables (NAME: \"value\"), got " +
                     describe(entry.value));
        }
        std::map<std::string, Entry> entries;
        for (auto it = entry.value.begin(); it != entry.value.end(); ++it) {
            Where key_at = where_of(it->first.Mark());
            std::string name = it->first.IsScalar() ? it->first.Scalar() : std::string();
            bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                         std::all_of(name.begin(), name.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                         });
            std::string path = entry.path + "." + name;
            if (!valid) {
                fail(key_at, path,
                     "'" + name + "' is not an environment variable name (letters, digits, '_')");
            }
            if (entries.count(name)) fail(key_at, path, "duplicate key");
            Entry e{name, path, key_at, it->second};
            env[name] = scalar(e, "a value (quote it: \"0.7\")");
            entries.emplace(name, e);
            m_where[path] = key_at;
        }
        // PyTorch checks the MPS watermarks only when the first allocation on the device
        // happens, against its defaults for the ratio left out; catching a bad pair here saves
        // a failed launch.
        auto ratio = [&](const char* name) -> std::optional<double> {
            auto it = entries.find(name);
            if (it == entries.end()) return std::nullopt;
            return number(it->second, at_least(0));
        };
        auto high = ratio(mps_high_watermark);
        auto low = ratio(mps_low_watermark);
        if (high && *high > mps_max_high) {
            const Entry& e = entries.at(mps_high_watermark);
            fail(e.at, e.path,
                 fmt::format("{} is above {}, the most PyTorch's MPS allocator accepts (twice the "
                             "recommended working set)",
                             env[mps_high_watermark], number_text(mps_max_high)));
        }
        if (high && !low && *high < mps_default_low) {
            const Entry& e = entries.at(mps_high_watermark);
            fail(e.at, e.path,
                 fmt::format("{} is below PyTorch's default low watermark ratio {}: set {} too "
                             "(at most {})",
                             env[mps_high_watermark], number_text(mps_default_low),
                             mps_low_watermark, env[mps_high_watermark]));
        }
        if (low && !high && *low > mps_default_high) {
            const Entry& e = entries.at(mps_low_watermark);
            fail(e.at, e.path,
                 fmt::format("{} is above PyTorch's default high watermark ratio {}: set {} too",
                             env[mps_low_watermark], number_text(mps_default_high),
                             mps_high_watermark));
        }
        if (high && low && *low > *high) {
            const Entry& e = entries.at(mps_low_watermark);
            fail(e.at, e.path,
                 fmt::format("{} must not exceed {} {}", env[mps_low_watermark], mps_high_watermark,
                             env[mps_high_watermark]));
        }
        return env;
    }

    void read_supervisor(const Entry& entry, SupervisorConfig& c) {
        Section s = section(
            entry, {"poll_interval", "soft_limit_fraction", "min_available", "pressure_threshold",
                    "pressure_duration", "heartbeat_timeout", "stop_grace", "backoff_floor",
                    "backoff_cap", "retry_budget", "promotion"});
        read_duration(s, "poll_interval", c.poll_interval_seconds, above(0));
        read(s, "soft_limit_fraction", c.soft_limit_fraction, open_closed(0, 1));
        read_size(s, "min_available", c.min_available);
        read(s, "pressure_threshold", c.pressure_threshold, closed(0, 100));
        read_duration(s, "pressure_duration", c.pressure_seconds, at_least(0));
        read_duration(s, "heartbeat_timeout", c.heartbeat_timeout_seconds, above(0));
        read_duration(s, "stop_grace", c.stop_grace_seconds, at_least(0));
        read_duration(s, "backoff_floor", c.backoff_floor_seconds, at_least(0));
        read_duration(s, "backoff_cap", c.backoff_cap_seconds, at_least(0));
        read(s, "retry_budget", c.retry_budget, 1);
        if (const Entry* e = s.get("promotion")) {
            Section p = section(*e, {"enabled", "stable_for", "headroom", "max_wait"});
            read(p, "enabled", c.promotion.enabled);
            read_duration(p, "stable_for", c.promotion.stable_seconds, at_least(0));
            read(p, "headroom", c.promotion.headroom, open_closed(0, 1));
            read_duration(p, "max_wait", c.promotion.max_wait_seconds, at_least(0));
        }
    }

    /// Checks that involve more than one key, then derives the accumulation of each tier.
    Config finish(Config& config, bool explicit_tiers) {
        const TrainingConfig& t = config.training;
        if (t.phase1.epochs + t.phase2.epochs < 1) {
            std::string path = m_where.count("training.phase2.epochs") ? "training.phase2.epochs"
                                                                       : "training.phase1.epochs";
            fail(locate(path), path,
                 "training.phase1.epochs + training.phase2.epochs must be at least 1");
        }
        const SupervisorConfig& s = config.supervisor;
        if (s.backoff_cap_seconds < s.backoff_floor_seconds) {
            fail(locate("supervisor.backoff_cap"), "supervisor.backoff_cap",
                 fmt::format("{} is below supervisor.backoff_floor {}",
                             format_duration_exact(s.backoff_cap_seconds),
                             format_duration_exact(s.backoff_floor_seconds)));
        }
        if (s.promotion.max_wait_seconds < s.promotion.stable_seconds) {
            fail(locate("supervisor.promotion.max_wait"), "supervisor.promotion.max_wait",
                 fmt::format("{} is below supervisor.promotion.stable_for {}",
                             format_duration_exact(s.promotion.max_wait_seconds),
                             format_duration_exact(s.promotion.stable_seconds)));
        }
        for (std::size_t i = 0; i < config.tiers.size(); ++i) {
            TierConfig& tier = config.tiers[i];
            if (t.effective_batch % tier.micro_batch != 0) {
                if (explicit_tiers) {
                    std::string path = fmt::format("tiers[{}].micro_batch", i);
                    fail(locate(path), path,
                         fmt::format("{} does not divide training.effective_batch {} "
                                     "(accumulation must be a whole number)",
                                     tier.micro_batch, t.effective_batch));
                }
                int common = 1;
                for (const TierConfig& other : config.tiers)
                    common = std::lcm(common, other.micro_batch);
                fail(locate("training.effective_batch"), "training.effective_batch",
                     fmt::format("{} is not a multiple of micro_batch {} of the default tier '{}' "
                                 "(accumulation must be a whole number); use a multiple of {} or "
                                 "list the tiers",
                                 t.effective_batch, tier.micro_batch, tier.name, common));
            }
            tier.accumulation = t.effective_batch / tier.micro_batch;
        }
        return config;
    }

    std::string m_file;
    std::filesystem::path m_base_dir;
    std::map<std::string, Where> m_where;  ///< key path -> where the key was written
};

/// The resume-relevant settings as (key path, canonical value) pairs, in a fixed order.
std::vector<std::pair<std::string, std::string>> resume_items(const Config& c) {
    return {
        {"model.backbone", to_string(c.model.backbone)},
        {"model.width_multiple", number_text(c.model.width_multiple)},
        {"model.depth_multiple", number_text(c.model.depth_multiple)},
        {"model.img_size", std::to_string(c.model.img_size)},
        {"model.drop_connect", number_text(c.model.drop_connect)},
        {"training.effective_batch", std::to_string(c.training.effective_batch)},
    };
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key_path,
                         std::string what)
    : std::runtime_error(compose_message(file, line, column, key_path, what)),
      m_file(std::move(file)),
      m_line(line),
      m_column(column),
      m_key_path(std::move(key_path)) {}

const TierConfig* Config::find_tier(const std::string& name) const {
    for (const TierConfig& tier : tiers) {
        if (tier.name == name) return &tier;
    }
    return nullptr;
}

Config load_config(const std::string& path) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const IoError& e) {
        throw ConfigError(path, 0, 0, "",
                          std::string("cannot read: ") + std::strerror(e.error_code()));
    }
    std::filesystem::path absolute = std::filesystem::absolute(path).lexically_normal();
    Loader loader(path, absolute.parent_path());
    Config config = loader.load(text);
    config.source_path = absolute.string();
    return config;
}

Config parse_config(const std::string& text, const std::string& name) {
    std::filesystem::path absolute = std::filesystem::absolute(name).lexically_normal();
    Loader loader(name, absolute.parent_path());
    Config config = loader.load(text);
    config.source_path = absolute.string();
    return config;
}

std::string dump_config(const Config& c) {
    YAML::Emitter out;
    auto key = [&](const char* k) -> YAML::Emitter& {
        return out << YAML::Key << k << YAML::Value;
    };
    auto num = [](double v) { return number_text(v); };
    auto quoted = [&](const std::string& s) { out << YAML::DoubleQuoted << s; };
    auto lr = [&](const GroupLr& g) {
        out << YAML::Flow << YAML::BeginMap;
        key("backbone") << num(g.backbone);
        key("neck") << num(g.neck);
        key("head") << num(g.head);
        out << YAML::EndMap;
    };

    out << YAML::Comment("Resolved configuration: every key, defaults filled in.");
    out << YAML::BeginMap;

    key("model") << YAML::BeginMap;
    key("backbone") << to_string(c.model.backbone);
    key("width_multiple") << num(c.model.width_multiple);
    key("depth_multiple") << num(c.model.depth_multiple);
    key("img_size") << c.model.img_size;
    key("drop_connect") << num(c.model.drop_connect);
    key("bn_momentum") << num(c.model.bn_momentum);
    out << YAML::EndMap;

    key("data") << YAML::BeginMap;
    key("dataset");
    quoted(c.data.dataset);
    key("synthetic") << YAML::Flow << YAML::BeginMap;
    key("images") << c.data.synthetic.images;
    key("size") << c.data.synthetic.size;
    key("seed") << std::to_string(c.data.synthetic.seed);
    out << YAML::EndMap;
    key("bad_labels") << to_string(c.data.bad_labels);
    key("cache_images") << c.data.cache_images;
    const AugmentConfig& a = c.data.augment;
    key("augment") << YAML::Flow << YAML::BeginMap;
    key("flip") << num(a.flip);
    key("hsv_h") << num(a.hsv_h);
    key("hsv_s") << num(a.hsv_s);
    key("hsv_v") << num(a.hsv_v);
    key("degrees") << num(a.degrees);
    key("translate") << num(a.translate);
    key("scale") << num(a.scale);
    out << YAML::EndMap;
    out << YAML::EndMap;

    const TrainingConfig& t = c.training;
    key("training") << YAML::BeginMap;
    key("effective_batch") << t.effective_batch;
    key("seed") << std::to_string(t.seed);
    key("deterministic") << (t.deterministic ? "true" : "false");
    for (const auto& [name, phase] :
         {std::pair{"phase1", &t.phase1}, std::pair{"phase2", &t.phase2}}) {
        key(name) << YAML::BeginMap;
        key("epochs") << phase->epochs;
        key("lr");
        lr(phase->lr);
        out << YAML::EndMap;
    }
    key("weight_decay") << num(t.weight_decay);
    key("warmup_steps") << num(t.warmup_steps);
    key("min_lr_ratio") << num(t.min_lr_ratio);
    key("grad_clip") << num(t.grad_clip);
    key("beta1") << num(t.beta1);
    key("beta2") << num(t.beta2);
    key("loss") << YAML::BeginMap;
    key("box") << num(t.loss.box);
    key("obj") << num(t.loss.obj);
    key("cls") << num(t.loss.cls);
    key("obj_balance") << YAML::Flow << YAML::BeginSeq;
    for (double v : t.loss.obj_balance) out << num(v);
    out << YAML::EndSeq;
    key("layer_weights") << YAML::Flow << YAML::BeginMap;
    for (const auto& [layer, weight] : t.loss.layer_weights) key(layer.c_str()) << num(weight);
    out << YAML::EndMap;
    key("anchor_threshold") << num(t.loss.anchor_threshold);
    out << YAML::EndMap;
    key("eval") << YAML::BeginMap;
    key("conf_threshold") << num(t.eval.conf_threshold);
    key("nms_iou") << num(t.eval.nms_iou);
    key("max_detections") << t.eval.max_detections;
    key("every_epochs") << t.eval.every_epochs;
    out << YAML::EndMap;
    key("early_stopping") << YAML::BeginMap;
    key("patience") << t.early_stopping.patience;
    key("min_delta") << num(t.early_stopping.min_delta);
    out << YAML::EndMap;
    key("checkpoint_every_steps") << t.checkpoint_every_steps;
    key("keep_checkpoints") << t.keep_checkpoints;
    key("max_nonfinite_steps") << t.max_nonfinite_steps;
    out << YAML::EndMap;

    key("tiers") << YAML::BeginSeq;
    for (const TierConfig& tier : c.tiers) {
        out << YAML::BeginMap;
        key("name");
        quoted(tier.name);
        key("device") << to_string(tier.device);
        key("micro_batch") << tier.micro_batch;
        key("threads") << tier.threads;
        key("memory_limit") << format_size_exact(tier.memory_limit);
        key("device_memory_limit") << format_size_exact(tier.device_memory_limit);
        key("activation_checkpointing") << (tier.activation_checkpointing ? "true" : "false");
        key("cleanup") << to_string(tier.cleanup);
        key("env") << YAML::Flow << YAML::BeginMap;
        for (const auto& [name, value] : tier.env) {
            key(name.c_str());
            quoted(value);
        }
        out << YAML::EndMap;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;

    const SupervisorConfig& s = c.supervisor;
    key("supervisor") << YAML::BeginMap;
    key("poll_interval") << format_duration_exact(s.poll_interval_seconds);
    key("soft_limit_fraction") << num(s.soft_limit_fraction);
    key("min_available") << format_size_exact(s.min_available);
    key("pressure_threshold") << num(s.pressure_threshold);
    key("pressure_duration") << format_duration_exact(s.pressure_seconds);
    key("heartbeat_timeout") << format_duration_exact(s.heartbeat_timeout_seconds);
    key("stop_grace") << format_duration_exact(s.stop_grace_seconds);
    key("backoff_floor") << format_duration_exact(s.backoff_floor_seconds);
    key("backoff_cap") << format_duration_exact(s.backoff_cap_seconds);
    key("retry_budget") << s.retry_budget;
    key("promotion") << YAML::BeginMap;
    key("enabled") << (s.promotion.enabled ? "true" : "false");
    key("stable_for") << format_duration_exact(s.promotion.stable_seconds);
    key("headroom") << num(s.promotion.headroom);
    key("max_wait") << format_duration_exact(s.promotion.max_wait_seconds);
    out << YAML::EndMap;
    out << YAML::EndMap;

    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

std::string resume_fingerprint(const Config& config) {
    std::string canonical = "smartcash-resume-v1\n";
    for (const auto& [path, value] : resume_items(config)) canonical += path + "=" + value + "\n";
    return sha256_hex(canonical);
}

std::vector<std::string> resume_incompatibilities(const Config& saved, const Config& current) {
    auto a = resume_items(saved);
    auto b = resume_items(current);
    std::vector<std::string> differ;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].second != b[i].second) differ.push_back(a[i].first);
    }
    return differ;
}

const char* to_string(Backbone b) { return enum_name(backbone_names, b); }
const char* to_string(Device d) { return enum_name(device_names, d); }
const char* to_string(BadLabelPolicy p) { return enum_name(bad_label_names, p); }
const char* to_string(Cleanup c) { return enum_name(cleanup_names, c); }

}  // namespace smartcash
