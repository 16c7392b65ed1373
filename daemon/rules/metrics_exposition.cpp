#include "daemon/rules/metrics_exposition.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <variant>

#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

void MetricsCounters::observe(const protocol::JournalEvent& event) {
    if (const auto* exit = std::get_if<protocol::ExitEvent>(&event)) {
        ++exits_by_class[exit->exit_class];
    } else if (std::holds_alternative<protocol::TierMoveEvent>(event)) {
        ++tier_moves;
    }
}

std::string escape_label_value(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string format_sample_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[64];
    if (value == std::floor(value) && std::fabs(value) < 9e15)
        std::snprintf(buf, sizeof buf, "%.0f", value);
    else
        std::snprintf(buf, sizeof buf, "%.17g", value);
    return buf;
}

namespace {

// Writes families one at a time: HELP and TYPE, then every sample of the family.
class Exposition {
  public:
    using Labels = std::map<std::string, std::string>;

    void family(const std::string& name, const char* type, const std::string& help) {
        m_name = "smartcash_" + name;
        m_out << "# HELP " << m_name << " " << help << "\n";
        m_out << "# TYPE " << m_name << " " << type << "\n";
    }
    void sample(double value, const Labels& labels = {}) {
        m_out << m_name;
        if (!labels.empty()) {
            m_out << "{";
            bool first = true;
            for (const auto& [k, v] : labels) {
                m_out << (first ? "" : ",") << k << "=\"" << escape_label_value(v) << "\"";
                first = false;
            }
            m_out << "}";
        }
        m_out << " " << format_sample_value(value) << "\n";
    }
    // A family with one sample, written only when the value is known.
    template <typename T>
    void gauge(const std::string& name, const std::optional<T>& value, const std::string& help) {
        if (!value) return;
        family(name, "gauge", help);
        sample(static_cast<double>(*value));
    }
    std::string text() const { return m_out.str(); }

  private:
    std::ostringstream m_out;
    std::string m_name;
};

template <typename T>
std::optional<T> known(T value, bool is_known) {
    return is_known ? std::optional<T>(value) : std::nullopt;
}

}  // namespace

std::string metrics_exposition(const protocol::StatusView& s, const MetricsCounters& counters) {
    Exposition e;
    e.family("up", "gauge", "Whether the supervisor is running (1) or this is state.json (0).");
    e.sample(s.supervisor_running.value_or(true) ? 1 : 0);

    e.family("worker_exits_total", "counter",
             "Worker ends since the supervisor started, by exit class.");
    std::map<std::string, std::uint64_t> exits = counters.exits_by_class;
    for (ExitClass c : {ExitClass::done, ExitClass::oom, ExitClass::oom_killed,
                        ExitClass::requested, ExitClass::fatal, ExitClass::crash, ExitClass::hang})
        exits.emplace(to_string(c), 0);
    for (const auto& [name, n] : exits) e.sample(static_cast<double>(n), {{"class", name}});

    e.family("tier_moves_total", "counter", "Tier moves since the supervisor started.");
    e.sample(static_cast<double>(counters.tier_moves));

    e.family("launches_total", "counter", "Worker launches in the whole job.");
    e.sample(s.launches);

    if (s.tier_index) {
        e.family("tier_index", "gauge",
                 "The tier in force: its place in the config's tier list (0: the first).");
        e.sample(*s.tier_index, {{"tier", s.tier}});
    }
    e.gauge("step", known(s.step, s.step >= 0), "Optimizer steps done.");
    e.gauge("total_steps", known(s.total_steps, s.total_steps > 0), "Optimizer steps in the job.");
    e.gauge("epoch", std::optional<int>(s.epoch), "The epoch the worker last reported (0-based).");
    e.gauge("epochs", s.epochs, "Epochs in the whole job.");
    e.gauge("loss", s.loss, "The training loss of the latest step.");
    e.gauge("map50", s.map50, "mAP@0.5 of the last validation.");
    e.gauge("map50_95", s.map50_95, "mAP@0.5:0.95 of the last validation.");
    e.gauge("images_per_second", s.images_per_s, "Training images per second, recently.");
    e.gauge("eta_seconds", s.eta_s, "Seconds left at the recent step rate.");
    e.gauge("rss_bytes", known(s.rss.value_or(0), s.pid > 0 && s.rss),
            "Resident memory of the worker's process tree.");
    e.gauge("memory_limit_bytes", known(s.memory_limit.value_or(0), s.memory_limit.value_or(0) > 0),
            "The memory limit of the tier in force.");
    e.gauge("device_memory_bytes", known(s.device_mem.value_or(0), s.pid > 0 && s.device_mem),
            "Device memory in live tensors, as the worker reported it.");
    return e.text();
}

}  // namespace smartcash::daemon
