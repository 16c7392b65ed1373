#include "worker/ui/progress.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/units.hpp"

namespace smartcash::ui {

namespace {

// About ten redraws a second: smooth to the eye, negligible next to a training step.
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr std::size_t kMinBarInner = 10;
constexpr std::size_t kMaxBarInner = 40;

std::string eta_text(double eta_s) {
    return (std::isnan(eta_s) || eta_s < 0.0) ? std::string("--") : format_duration(eta_s);
}

std::string step_text(const ProgressState& s) {
    if (s.steps_in_epoch <= 0) {
        return fmt::format("{}/?", s.step_in_epoch);
    }
    // Pad the step to the total's width so the line does not jitter as digits are added.
    const std::string total = fmt::format("{}", s.steps_in_epoch);
    const double pct =
        100.0 * static_cast<double>(s.step_in_epoch) / static_cast<double>(s.steps_in_epoch);
    return fmt::format("{:>{}}/{} {:3.0f}%", s.step_in_epoch, total.size(), total, pct);
}

std::string bar_text(const ProgressState& s, std::size_t inner) {
    std::size_t filled = 0;
    if (s.steps_in_epoch > 0) {
        const double frac = std::clamp(
            static_cast<double>(s.step_in_epoch) / static_cast<double>(s.steps_in_epoch), 0.0, 1.0);
        filled = static_cast<std::size_t>(std::floor(frac * static_cast<double>(inner)));
    }
    std::string bar = "[";
    bar.append(filled, '=');
    if (filled < inner) {
        bar += filled > 0 ? ">" : " ";
        bar.append(inner - filled - 1, ' ');
    }
    return bar + "]";
}

// A line part, and how early it is dropped when the terminal is narrow (0 = never).
struct Part {
    std::string text;
    int drop_rank;
};

}  // namespace

bool stdout_is_terminal() {
    if (isatty(STDOUT_FILENO) == 0) {
        return false;
    }
    const char* term = std::getenv("TERM");
    return term == nullptr || std::strcmp(term, "dumb") != 0;
}

int terminal_width(std::FILE* out, int fallback) {
    const int fd = out != nullptr ? fileno(out) : -1;
    winsize ws{};
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return fallback;
}

std::string format_progress_line(const ProgressState& s, int width) {
    // Parts in display order; the bar goes after the first one.
    std::vector<Part> parts{
        {fmt::format("ep {}/{} p{}", s.epoch, s.epochs, s.phase), 0},
        {step_text(s), 0},
        {fmt::format("loss {:.4f}", s.loss), 0},
        {fmt::format("box {:.3f} obj {:.3f} cls {:.3f}", s.loss_box, s.loss_obj, s.loss_cls), 6},
        {fmt::format("{:.1f} img/s", s.images_per_s), 5},
        {"ETA " + eta_text(s.eta_s), 1},
        {"RSS " + format_size(s.rss), 2},
    };
    if (s.device_mem > 0) {
        parts.push_back({"dev " + format_size(s.device_mem), 3});
    }
    if (!s.tier.empty()) {
        parts.push_back({s.tier, 4});
    }
    if (s.lr > 0.0) {
        parts.push_back({fmt::format("lr {:.2e}", s.lr), 7});
    }

    // Never use the last column: writing there makes some terminals wrap.
    const std::size_t avail = width > 1 ? static_cast<std::size_t>(width - 1) : 0;
    const auto text_width = [&] {
        std::size_t w = 0;
        for (const Part& p : parts) {
            w += p.text.size() + 1;  // and a separating space
        }
        return w;
    };
    // Drop parts, least useful first, until a bar of the minimum width fits.
    while (text_width() + kMinBarInner + 2 > avail) {
        auto victim = std::max_element(
            parts.begin(), parts.end(),
            [](const Part& a, const Part& b) { return a.drop_rank < b.drop_rank; });
        if (victim == parts.end() || victim->drop_rank == 0) {
            break;
        }
        parts.erase(victim);
    }

    std::string line = parts.front().text;
    const std::size_t used = text_width();
    if (used + kMinBarInner + 2 <= avail) {
        const std::size_t inner = std::min(kMaxBarInner, avail - used - 2);
        line += " " + bar_text(s, inner);
    }
    for (std::size_t i = 1; i < parts.size(); ++i) {
        line += " " + parts[i].text;
    }
    if (line.size() > avail) {
        line.resize(avail);
    }
    return line;
}

std::string format_progress_plain(const ProgressState& s) {
    std::string line = fmt::format(
        "epoch {}/{} phase {} step {} loss {:.4f} (box {:.4f} obj {:.4f} cls {:.4f}) {:.1f} img/s "
        "ETA {} RSS {}",
        s.epoch, s.epochs, s.phase, step_text(s), s.loss, s.loss_box, s.loss_obj, s.loss_cls,
        s.images_per_s, eta_text(s.eta_s), format_size(s.rss));
    if (s.device_mem > 0) {
        line += " device " + format_size(s.device_mem);
    }
    if (!s.tier.empty()) {
        line += " tier " + s.tier;
    }
    if (s.lr > 0.0) {
        line += fmt::format(" lr {:.2e}", s.lr);
    }
    return line;
}

ProgressBar::ProgressBar(std::FILE* out, bool terminal, double plain_interval_s)
    : m_out(out),
      m_terminal(terminal),
      m_plain_interval(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(std::max(0.0, plain_interval_s)))) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(const ProgressState& state) { update_at(state, Clock::now()); }

void ProgressBar::update_at(const ProgressState& state, Clock::time_point now) {
    const bool new_epoch = state.epoch != m_drawn_epoch || state.phase != m_drawn_phase;
    if (new_epoch && m_have_last) {
        // The caller skipped finish(): keep the old epoch's last line before starting anew.
        finish();
    }
    m_last = state;
    m_have_last = true;
    m_last_shown = false;

    bool due = !m_last_draw || new_epoch;
    if (!due) {
        const auto since = now - *m_last_draw;
        if (m_terminal) {
            const bool epoch_done =
                state.steps_in_epoch > 0 && state.step_in_epoch >= state.steps_in_epoch;
            due = since >= kRedrawInterval || epoch_done;
        } else {
            due = since >= m_plain_interval;
        }
    }
    if (due) {
        draw(state, now);
    }
}

void ProgressBar::draw(const ProgressState& state, Clock::time_point now) {
    if (m_terminal) {
        const int width = m_fixed_width > 0 ? m_fixed_width : terminal_width(m_out);
        // "\r" back to column 0, then erase what a longer previous line left behind.
        fmt::print(m_out, "\r{}\x1b[K", format_progress_line(state, width));
        m_line_open = true;
    } else {
        fmt::print(m_out, "{}\n", format_progress_plain(state));
    }
    std::fflush(m_out);
    m_last_draw = now;
    m_drawn_epoch = state.epoch;
    m_drawn_phase = state.phase;
    m_last_shown = true;
}

void ProgressBar::finish() {
    if (m_have_last && !m_last_shown) {
        draw(m_last, Clock::now());
    }
    if (m_terminal && m_line_open) {
        std::fputs("\n", m_out);
        std::fflush(m_out);
        m_line_open = false;
    }
    m_have_last = false;
    m_last_draw.reset();
    m_drawn_epoch = -1;
    m_drawn_phase = -1;
}

}  // namespace smartcash::ui
