#include "daemon/shell/startup_checks.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/file_lock.hpp"
#include "common/run_dir.hpp"
#include "daemon/shell/devices.hpp"

namespace smartcash::daemon {

using Clock = std::chrono::steady_clock;

void wait_for_leftover_worker(const std::string& run_dir, double grace_s, const LogLine& log) {
    const std::string path = run_dir::worker_lock(run_dir);
    int pid = 0;
    if (!FileLock::held(path, &pid)) return;
    const std::string who = pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string();
    log("a worker of an earlier supervisor" + who + " still holds " + path +
            "; waiting for it to stop",
        EventWeight::routine);
    auto wait_free = [&](double seconds) {
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(seconds));
        int holder = 0;
        while (Clock::now() < deadline && FileLock::held(path, &holder)) ::usleep(50 * 1000);
        return !FileLock::held(path, &holder);
    };
    if (wait_free(grace_s)) return;
    // The lock is held, so its recorded holder (or the group it leads) is alive: a pid that
    // cannot have been reused.
    if (pid > 0) {
        log("killing the earlier worker" + who, EventWeight::alarm);
        if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
    }
    if (!wait_free(5.0))
        log("the earlier worker's lock is still held; the new worker will refuse to start",
            EventWeight::alarm);
}

DevicePresence devices_for(const Config& config, const std::string& worker_path,
                           const LogLine& log) {
    const bool needed = std::any_of(config.tiers.begin(), config.tiers.end(), [](const auto& t) {
        return t.device == Device::cuda || t.device == Device::mps;
    });
    if (!needed) return DevicePresence{};
    DevicePresence devices = ask_worker_for_devices(worker_path, std::chrono::seconds(60));
    auto line = [](const char* name, bool usable, const std::string& why) {
        return std::string(name) + (usable ? " usable" : " not usable (" + why + ")");
    };
    log("devices: " + line("cuda", devices.cuda, devices.cuda_why) + ", " +
            line("mps", devices.mps, devices.mps_why),
        EventWeight::routine);
    return devices;
}

}  // namespace smartcash::daemon
