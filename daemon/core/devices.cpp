#include "daemon/core/devices.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

namespace smartcash::daemon {

static bool exists(const char* path) {
    struct stat st {};
    return ::stat(path, &st) == 0;
}

DevicePresence detect_devices() {
    DevicePresence d;
    if (const char* forced = std::getenv("SMARTCASH_DEVICES")) {
        const std::string list = std::string(",") + forced + ",";
        d.cuda = list.find(",cuda,") != std::string::npos;
        d.mps = list.find(",mps,") != std::string::npos;
        return d;
    }
    d.cuda = exists("/dev/nvidia0") || exists("/proc/driver/nvidia");
#if defined(__APPLE__) && (defined(__aarch64__) || defined(__arm64__))
    d.mps = true;
#endif
    return d;
}

}  // namespace smartcash::daemon
