#pragma once
// The live progress display of a training epoch: one redrawn line in a terminal, a plain line
// every few seconds in a log.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace smartcash::ui {

/// True when standard output is an interactive terminal that understands a carriage return and
/// erase-to-end-of-line (a tty whose TERM is not "dumb").
bool stdout_is_terminal();

/// Width of the terminal behind `out` in columns, or `fallback` when it is not a terminal or
/// does not say.
int terminal_width(std::FILE* out, int fallback = 100);

/// Where training stands, as shown by ProgressBar. Sizes are bytes; 0 for device_mem means "no
/// device memory to show" (CPU training). A negative or NaN eta_s means "not known yet"; lr 0 and
/// an empty tier are left out of the line.
struct ProgressState {
    int epoch = 0;
    int epochs = 0;
    int phase = 1;
    long step_in_epoch = 0;
    long steps_in_epoch = 0;
    double loss = 0.0;
    double loss_box = 0.0;
    double loss_obj = 0.0;
    double loss_cls = 0.0;
    double images_per_s = 0.0;
    double eta_s = -1.0;
    std::uint64_t rss = 0;
    std::uint64_t device_mem = 0;
    std::string tier;
    double lr = 0.0;
};

/// The terminal line for `state`, at most `width - 1` columns (so the cursor never wraps):
/// epoch and phase, a bar, step/total, loss and its parts, images/s, ETA, RSS, device memory,
/// tier and learning rate. When the width is short the least useful parts go first (learning
/// rate, loss parts, device memory, RSS, ...), then the bar shrinks. ASCII only.
std::string format_progress_line(const ProgressState& state, int width);

/// The same facts as one plain log line with every field, for output that is not a terminal.
std::string format_progress_plain(const ProgressState& state);

/// Draws progress on `out`.
///
/// Terminal mode redraws a single line in place ("\r", erase to end of line), at most about ten
/// times a second, sized to the terminal's current width. Plain mode writes a full line (no "\r",
/// no escape codes) on the first update of an epoch and then at most once per `plain_interval_s`,
/// so a log file gets a steady, readable record. In both modes the last state is always shown by
/// finish(). The bar does not own `out`.
class ProgressBar {
  public:
    using Clock = std::chrono::steady_clock;

    ProgressBar(std::FILE* out, bool terminal, double plain_interval_s = 10.0);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    /// Shows `state` if the throttle allows (see the class comment).
    void update(const ProgressState& state);
    /// As update(), with the time supplied by the caller (tests, replays).
    void update_at(const ProgressState& state, Clock::time_point now);

    /// Shows the last state if it is not on screen yet and, in terminal mode, ends the line so
    /// what follows (an epoch summary) starts on its own. Call at the end of each epoch; a no-op
    /// when nothing was shown since the last finish().
    void finish();

    /// Forces the terminal width instead of asking the terminal (tests, fixed-width logs).
    void set_width(int width) { m_fixed_width = width; }

  private:
    void draw(const ProgressState& state, Clock::time_point now);

    std::FILE* m_out;
    bool m_terminal;
    Clock::duration m_plain_interval;
    ProgressState m_last;  // last state given, shown or not (when m_have_last)
    bool m_have_last = false;
    bool m_last_shown = false;
    bool m_line_open = false;  // terminal: a bar line without its newline yet
    std::optional<Clock::time_point> m_last_draw;
    int m_drawn_epoch = -1;
    int m_drawn_phase = -1;
    int m_fixed_width = 0;
};

}  // namespace smartcash::ui
