#include "daemon/shell/console.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "common/progress_block.hpp"
#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "daemon/rundir/run_files.hpp"

namespace smartcash::daemon {

Console::Console(bool enabled, bool follow, bool verbose)
    : m_enabled(enabled), m_follow(follow), m_terminal(::isatty(STDERR_FILENO) == 1) {
    if (m_enabled && follow && m_terminal) {
        m_block = std::make_unique<LiveBlock>(std::cerr, /*terminal=*/true);
        m_follow = verbose;  // the block replaces the worker's own progress lines
    }
}

// One line that stays: above the live block when there is one.
void Console::write(const std::string& text) const {
    std::cerr.clear();  // a write that failed once (full disk, EFBIG) must not mute the rest
    if (m_block)
        m_block->line(text);
    else
        std::cerr << text << std::endl;
}

void Console::show(const protocol::StatusView& status) {
    if (m_block) m_block->show(progress_block(status, terminal_width(STDERR_FILENO)));
}

void Console::log(const std::string& line, EventWeight weight) const {
    if (!m_enabled) return;
    const std::string clock = iso_time_now().substr(11, 8);  // HH:MM:SS, UTC like the journal
    std::string text = line;
    if (weight == EventWeight::alarm) {
        text = "==> " + line;
        if (m_terminal) text = "\033[1;33m" + text + "\033[0m";
    } else if (weight == EventWeight::notable && m_terminal) {
        text = "\033[1m" + text + "\033[0m";
    }
    write("smartcashd " + clock + "  " + text);
}

void Console::follow(const std::string& path) {
    end_follow();
    m_path = path;
}

void Console::poll_followed() {
    if (!m_follow || m_path.empty()) return;
    std::ifstream in(m_path, std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(m_offset));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    m_offset += chunk.size();
    m_pending += chunk;
    std::size_t start = 0;
    for (std::size_t nl; (nl = m_pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = m_pending.substr(start, nl - start);
        // A terminal progress bar redraws with carriage returns; keep its last state only.
        if (auto cr = line.find_last_of('\r'); cr != std::string::npos) line = line.substr(cr + 1);
        if (!line.empty()) write("    worker | " + line);
    }
    m_pending.erase(0, start);
}

void Console::end_follow() {
    poll_followed();
    if (m_follow && !m_pending.empty()) write("    worker | " + m_pending);
    m_pending.clear();
    m_path.clear();
    m_offset = 0;
}

void Console::summary(const Finish& a, const SupervisorState& state, const Config& config,
                      const std::string& run_dir) const {
    if (!m_enabled) return;
    if (m_block) m_block->clear();
    const std::size_t t = static_cast<std::size_t>(state.tier);
    char buf[32];
    std::cerr << "\nsmartcashd: job " << to_string(a.status) << "\n";
    if (!a.message.empty()) std::cerr << "  " << a.message << "\n";
    if (t < config.tiers.size()) std::cerr << "  tier:        " << config.tiers[t].name << "\n";
    if (state.step >= 0)
        std::cerr << "  step:        " << state.step
                  << (state.total_steps > 0 ? " of " + std::to_string(state.total_steps)
                                            : std::string())
                  << "\n";
    std::cerr << "  launches:    " << state.launches << "\n";
    if (state.shown.map50) {
        std::snprintf(buf, sizeof buf, "%.3f", *state.shown.map50);
        std::cerr << "  mAP@0.5:     " << buf
                  << (a.status == JobStatus::done ? " (best)" : " (last eval)") << "\n";
    }
    for (const auto& [name, v] : state.shown.layer_map50) {
        std::snprintf(buf, sizeof buf, "%.3f", v);
        std::cerr << "  " << name << " mAP@0.5: " << buf << " (last eval)\n";
    }
    for (std::size_t i = 0; i < config.tiers.size(); ++i) {
        auto it = state.tier_records.find(config.tiers[i].name);
        if (it == state.tier_records.end() || it->second.launches == 0) continue;
        std::cerr << "  tier " << config.tiers[i].name << ": " << it->second.launches << " launch"
                  << (it->second.launches == 1 ? "" : "es") << ", peak RSS "
                  << format_size(it->second.peak_rss) << ", last "
                  << (it->second.last_outcome.empty() ? "-" : it->second.last_outcome) << "\n";
    }
    if (!state.last_checkpoint.empty())
        std::cerr << "  checkpoint:  " << state.last_checkpoint << "\n";
    std::cerr << "  journal:     " << run_dir::events(run_dir) << "\n";
    std::cerr << "  worker logs: " << run_dir::logs(run_dir) << "/worker-N.log" << std::endl;
}

}  // namespace smartcash::daemon
