// Decodes the next step's images on one long-lived thread while the current step trains. One
// thread for the whole run, made at set-up: no thread is created (no stack or malloc arena mapped)
// in the middle of a run, when memory may be short. A job's exception is kept and rethrown to
// the step that takes its images.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "worker/data/sample.hpp"

namespace smartcash::train {

class SamplePrefetcher {
  public:
    /// Which step a job decodes: (epoch, step in epoch).
    struct Key {
        int epoch = -1;
        std::int64_t step_in_epoch = -1;
        bool operator==(const Key& o) const {
            return epoch == o.epoch && step_in_epoch == o.step_in_epoch;
        }
    };
    using Job = std::function<std::vector<data::Sample>()>;

    SamplePrefetcher();
    ~SamplePrefetcher();
    SamplePrefetcher(const SamplePrefetcher&) = delete;
    SamplePrefetcher& operator=(const SamplePrefetcher&) = delete;

    /// Starts `job` for `key` (after the previous job, whose result is dropped if not taken).
    void start(Key key, Job job);

    /// Waits for the job of `key` and returns its images (rethrowing what it threw); nullopt when
    /// no job was started for `key`. Any other job's result is dropped.
    std::optional<std::vector<data::Sample>> take(Key key);

  private:
    void run();
    void wait_idle(std::unique_lock<std::mutex>& lock);

    std::mutex m_mutex;
    std::condition_variable m_wake;
    Key m_key;
    Job m_job;
    bool m_busy = false;  ///< a job is queued or running
    bool m_quit = false;
    std::optional<std::vector<data::Sample>> m_result;
    std::exception_ptr m_error;
    std::thread m_thread;  ///< last: started once the rest is set up
};

}  // namespace smartcash::train
