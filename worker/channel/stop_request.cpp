#include "worker/channel/stop_request.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>

#include "common/exit_codes.hpp"

namespace smartcash::train {

namespace {
std::atomic<int> g_signal{0};  // last stop signal seen
std::atomic<int> g_sigint_count{0};
std::atomic<bool> g_requested{false};
std::mutex g_mutex;
std::string g_reason;
int g_exit_code = exit_code::requested_stop;

extern "C" void on_stop_signal(int sig) {
    if (sig == SIGINT && g_sigint_count.fetch_add(1) >= 1) {
        const char msg[] = "\nsecond interrupt: exiting without a checkpoint\n";
        ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        ::_exit(130);
    }
    g_signal.store(sig);
    g_requested.store(true);
}
}  // namespace

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
}

bool stop_requested() { return g_requested.load(); }

void request_stop(const std::string& reason, int exit_code) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_requested.load()) {
        g_reason = reason;
        g_exit_code = exit_code;
    }
    g_requested.store(true);
}

std::string stop_reason() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_reason.empty()) return g_reason;
    switch (g_signal.load()) {
        case SIGTERM:
            return "SIGTERM";
        case SIGINT:
            return "SIGINT";
        default:
            return "requested";
    }
}

int stop_exit_code() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_exit_code;
}

}  // namespace smartcash::train
