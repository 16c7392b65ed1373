#include "worker/train/sample_prefetcher.hpp"

namespace smartcash::train {

SamplePrefetcher::SamplePrefetcher() : m_thread([this] { run(); }) {}

SamplePrefetcher::~SamplePrefetcher() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_quit = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

void SamplePrefetcher::wait_idle(std::unique_lock<std::mutex>& lock) {
    m_wake.wait(lock, [this] { return !m_busy; });
}

void SamplePrefetcher::start(Key key, Job job) {
    {
        std::unique_lock<std::mutex> lock(m_mutex);
        wait_idle(lock);
        m_key = key;
        m_job = std::move(job);
        m_result.reset();
        m_error = nullptr;
        m_busy = true;
    }
    m_wake.notify_all();
}

std::optional<std::vector<data::Sample>> SamplePrefetcher::take(Key key) {
    std::unique_lock<std::mutex> lock(m_mutex);
    wait_idle(lock);
    const bool mine = m_key == key && (m_result || m_error);
    m_key = Key{};
    auto result = std::move(m_result);
    auto error = m_error;
    m_result.reset();
    m_error = nullptr;
    if (!mine) return std::nullopt;
    if (error) std::rethrow_exception(error);
    return result;
}

void SamplePrefetcher::run() {
    std::unique_lock<std::mutex> lock(m_mutex);
    for (;;) {
        m_wake.wait(lock, [this] { return m_quit || (m_busy && m_job); });
        if (m_quit) return;
        Job job = std::move(m_job);
        m_job = nullptr;
        lock.unlock();
        std::optional<std::vector<data::Sample>> result;
        std::exception_ptr error;
        try {
            result = job();
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        m_result = std::move(result);
        m_error = error;
        m_busy = false;
        m_wake.notify_all();
    }
}

}  // namespace smartcash::train
