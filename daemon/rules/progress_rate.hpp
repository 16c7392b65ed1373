// What the supervisor keeps of the worker's progress reports for people (status, watch,
// metrics): the latest report and the recent step rate, from which the time left is estimated.
// Pure: the caller gives the time.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "common/reports.hpp"

namespace smartcash::daemon {

class LiveProgress {
  public:
    /// How far back the step rate looks.
    static constexpr double window_s = 60;

    /// A progress report received at `now` (seconds on any steady clock).
    void observe(double now, const protocol::Progress& report);
    /// A new worker starts: its first steps may repeat what the last one did before it died.
    void restart();

    const std::optional<protocol::Progress>& last() const { return m_last; }
    /// Optimizer steps per second over the window (nullopt until two reports a step apart).
    std::optional<double> steps_per_s() const;
    /// Seconds to `total_steps` at the recent rate.
    std::optional<double> eta_s() const;

  private:
    struct Sample {
        double at = 0;
        std::int64_t step = 0;
    };
    std::optional<protocol::Progress> m_last;
    std::deque<Sample> m_samples;
};

}  // namespace smartcash::daemon
