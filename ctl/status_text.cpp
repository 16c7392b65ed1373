#include "ctl/status_text.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/units.hpp"

namespace smartcash::ctl {

namespace {

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string tier_line(const protocol::StatusView& s) {
    std::string line = or_dash(s.tier);
    if (s.tier_index && !s.tier_order.empty()) {
        line += " (" + std::to_string(*s.tier_index + 1) + " of " +
                std::to_string(s.tier_order.size()) + ":";
        for (std::size_t i = 0; i < s.tier_order.size(); ++i)
            line += (i ? " > " : " ") + s.tier_order[i];
        line += ")";
    }
    const std::string device =
        s.device.value_or("").empty() ? s.tier_device.value_or("") : *s.device;
    return line + "  device " + or_dash(device);
}

std::string progress_text(const protocol::StatusView& s) {
    std::string line;
    if (s.training_phase)
        line += "phase " + std::to_string(*s.training_phase) + "/" +
                std::to_string(s.phases.value_or(*s.training_phase)) + ", ";
    int epoch = s.epoch + 1;
    if (s.epochs && *s.epochs > 0) epoch = std::min(epoch, *s.epochs);
    line += "epoch " + std::to_string(epoch) +
            (s.epochs ? "/" + std::to_string(*s.epochs) : std::string()) + ", ";
    line += "step " + (s.step >= 0 ? std::to_string(s.step) : std::string("-"));
    if (s.total_steps > 0) line += "/" + std::to_string(s.total_steps);
    if (s.step_in_epoch && s.steps_per_epoch)
        line += " (" + std::to_string(*s.step_in_epoch) + "/" + std::to_string(*s.steps_per_epoch) +
                " in this epoch)";
    return line;
}

// Several ranks: one line for the world, one per rank as this rank's agent last saw it.
void world_lines(std::ostringstream& out, const protocol::WorldStatus& w) {
    out << "world:      rank " << w.rank << " of " << w.world_size << ", store "
        << or_dash(w.store);
    if (w.round >= 0) out << ", round " << w.round;
    if (!w.waiting_for.empty()) {
        out << ", waiting for rank";
        for (int r : w.waiting_for) out << " " << r;
    }
    out << "\n";
    for (const auto& r : w.ranks) {
        out << "  rank " << r.rank << ": ";
        if (r.age_s < 0) {
            out << "not seen yet\n";
            continue;
        }
        out << or_dash(r.state) << ", tier " << or_dash(r.tier) << " (" << or_dash(r.device)
            << "), step " << (r.step >= 0 ? std::to_string(r.step) : std::string("-")) << ", RSS "
            << format_size(r.rss);
        if (r.age_s >= 5) out << ", last news " << fixed(r.age_s, 0) << " s ago";
        out << "\n";
    }
}

}  // namespace

std::string status_text(const protocol::StatusView& s) {
    std::ostringstream out;
    out << "state:      " << or_dash(s.state) << " (" << or_dash(s.phase) << ")\n";
    if (!s.supervisor_running.value_or(true)) out << "supervisor: not running (from state.json)\n";
    out << "tier:       " << tier_line(s) << "\n";
    out << "progress:   " << progress_text(s) << "\n";
    if (s.eta_s || s.images_per_s) {
        out << "ETA:        " << (s.eta_s ? format_duration(*s.eta_s) : std::string("-"));
        if (s.images_per_s) out << " at " << fixed(*s.images_per_s, 1) << " images/s";
        out << "\n";
    }
    out << "loss:       " << (s.loss ? fixed(*s.loss, 4) : std::string("-")) << "\n";
    out << "mAP@0.5:    " << (s.map50 ? fixed(*s.map50, 4) : std::string("-"));
    if (s.map50_95) out << "   mAP@0.5:0.95 " << fixed(*s.map50_95, 4);
    out << "\n";
    for (const auto& [name, v] : s.layers_map50)
        out << "  " << name << " mAP@0.5: " << fixed(v, 4) << "\n";
    const std::uint64_t limit = s.memory_limit.value_or(0);
    if (s.pid > 0) {
        const std::uint64_t rss = s.rss.value_or(0);
        out << "memory:     " << format_size(rss);
        if (limit > 0)
            out << " of " << format_size(limit) << " ("
                << fixed(100.0 * static_cast<double>(rss) / static_cast<double>(limit), 0) << "%)";
        if (s.device_mem && *s.device_mem > 0) out << "   device " << format_size(*s.device_mem);
        out << "\n";
    } else if (limit > 0) {
        out << "memory:     limit " << format_size(limit) << "\n";
    }
    out << "worker:     "
        << (s.pid > 0 ? "pid " + std::to_string(s.pid) : std::string("not running"));
    out << "  launches " << s.launches;
    if (s.tiers) {
        std::string per_tier;
        for (const auto& [name, t] : *s.tiers) {
            if (t.launches == 0) continue;
            per_tier += (per_tier.empty() ? "" : ", ") + name + " " + std::to_string(t.launches) +
                        " (last " + or_dash(t.last_outcome) + ")";
        }
        if (!per_tier.empty()) out << ": " << per_tier;
    }
    out << "\n";
    out << "checkpoint: " << or_dash(s.last_checkpoint) << "\n";
    if (s.world) world_lines(out, *s.world);
    if (!s.message.empty()) out << "message:    " << s.message << "\n";
    return out.str();
}

}  // namespace smartcash::ctl
