#include "common/progress_block.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/units.hpp"

namespace smartcash {

namespace {

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

template <typename T>
std::string or_dash(const std::optional<T>& v, int decimals) {
    return v ? fixed(static_cast<double>(*v), decimals) : std::string("-");
}

std::string fit(std::string line, int width) {
    if (width > 0 && static_cast<int>(line.size()) > width)
        line.resize(static_cast<std::size_t>(width));
    return line;
}

// The epoch the worker is in, 1-based, and no more than the job's epochs.
int epoch_shown(const protocol::StatusView& s) {
    int e = s.epoch + 1;
    if (s.epochs && *s.epochs > 0) e = std::min(e, *s.epochs);
    return e;
}

std::string tier_text(const protocol::StatusView& s) {
    std::string t = "tier " + (s.tier.empty() ? std::string("-") : s.tier);
    if (s.tier_index && !s.tier_order.empty())
        t += " (" + std::to_string(*s.tier_index + 1) + "/" + std::to_string(s.tier_order.size()) +
             ")";
    const std::string device =
        s.device && !s.device->empty() ? *s.device : s.tier_device.value_or("");
    if (!device.empty()) t += " on " + device;
    return t;
}

}  // namespace

std::string progress_bar(double fraction, int cells) {
    cells = std::max(cells, 3);
    const int inside = cells - 2;
    if (!std::isfinite(fraction)) fraction = 0;
    fraction = std::clamp(fraction, 0.0, 1.0);
    const int filled = static_cast<int>(std::floor(fraction * inside + 1e-9));
    std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '=');
    if (filled < inside) bar += filled > 0 ? ">" : " ";
    bar += std::string(static_cast<std::size_t>(std::max(0, inside - filled - 1)), ' ');
    return bar + "]";
}

std::vector<std::string> progress_block(const protocol::StatusView& s, int width) {
    width = std::max(width, 40);
    const int bar = std::clamp(width - 60, 10, 40);  // room for the figures after it
    std::vector<std::string> lines;
    lines.push_back(fit(tier_text(s) + "  " + (s.state.empty() ? "-" : s.state) + " (" + s.phase +
                            ")  launches " + std::to_string(s.launches),
                        width));

    std::string epoch = "epoch " + std::to_string(epoch_shown(s)) + "/" +
                        (s.epochs ? std::to_string(*s.epochs) : std::string("-"));
    if (s.training_phase)
        epoch += " phase " + std::to_string(*s.training_phase) + "/" +
                 std::to_string(s.phases.value_or(*s.training_phase));
    epoch.resize(std::max<std::size_t>(epoch.size(), 22), ' ');
    if (s.steps_per_epoch && *s.steps_per_epoch > 0 && s.step_in_epoch) {
        epoch += progress_bar(static_cast<double>(*s.step_in_epoch) / *s.steps_per_epoch, bar) +
                 " " + std::to_string(*s.step_in_epoch) + "/" + std::to_string(*s.steps_per_epoch);
    } else {
        epoch += progress_bar(0, bar);
    }
    lines.push_back(fit(epoch, width));

    std::string job = "job";
    job.resize(22, ' ');
    const double done = s.total_steps > 0
                            ? static_cast<double>(std::max<std::int64_t>(s.step, 0)) / s.total_steps
                            : 0.0;
    job += progress_bar(done, bar) + " " + fixed(done * 100, 0) + "%  step " +
           (s.step >= 0 ? std::to_string(s.step) : std::string("-")) + "/" +
           (s.total_steps > 0 ? std::to_string(s.total_steps) : std::string("-")) + "  ETA " +
           (s.eta_s ? format_duration(*s.eta_s) : std::string("-"));
    lines.push_back(fit(job, width));

    lines.push_back(fit("loss " + or_dash(s.loss, 4) + "  mAP@0.5 " + or_dash(s.map50, 3) +
                            "  images/s " + or_dash(s.images_per_s, 1),
                        width));

    std::string memory = "memory";
    memory.resize(22, ' ');
    const std::uint64_t rss = s.pid > 0 ? s.rss.value_or(0) : 0;
    const std::uint64_t limit = s.memory_limit.value_or(0);
    memory += progress_bar(limit > 0 ? static_cast<double>(rss) / limit : 0.0, bar) + " " +
              format_size(rss) + " / " + (limit > 0 ? format_size(limit) : std::string("no limit"));
    if (s.pid > 0 && s.device_mem && *s.device_mem > 0)
        memory += "  device " + format_size(*s.device_mem);
    lines.push_back(fit(memory, width));
    return lines;
}

std::string progress_line(const protocol::StatusView& s) {
    std::string line = "step " + (s.step >= 0 ? std::to_string(s.step) : std::string("-"));
    if (s.total_steps > 0) line += "/" + std::to_string(s.total_steps);
    line += ", epoch " + std::to_string(epoch_shown(s));
    if (s.epochs) line += "/" + std::to_string(*s.epochs);
    line += ", loss " + or_dash(s.loss, 4);
    if (s.images_per_s) line += ", " + fixed(*s.images_per_s, 1) + " img/s";
    if (s.eta_s) line += ", ETA " + format_duration(*s.eta_s);
    if (s.pid > 0 && s.rss) {
        line += ", RSS " + format_size(*s.rss);
        if (s.memory_limit.value_or(0) > 0) line += " of " + format_size(*s.memory_limit);
    }
    return line + " (" + tier_text(s) + ", " + s.state + ")";
}

}  // namespace smartcash
