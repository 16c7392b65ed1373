#include "daemon/shell/self_path.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <vector>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

namespace smartcash::daemon {

std::optional<std::string> self_executable_path() {
    std::error_code ec;
#if defined(__APPLE__)
    std::uint32_t size = 0;
    _NSGetExecutablePath(nullptr, &size);  // asks for the size
    std::vector<char> buffer(size + 1, '\0');
    if (_NSGetExecutablePath(buffer.data(), &size) != 0) return std::nullopt;
    // The path may go through symlinks or "..": resolve it like /proc/self/exe would be.
    auto resolved = std::filesystem::canonical(buffer.data(), ec);
    if (ec) return std::string(buffer.data());
    return resolved.string();
#elif defined(__linux__)
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return std::nullopt;
    return self.string();
#else
    (void)ec;
    return std::nullopt;
#endif
}

std::string resolve_worker_path(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("SMARTCASH_WORKER"); env && *env) return env;
    if (auto self = self_executable_path())
        return (std::filesystem::path(*self).parent_path() / "smartcash-worker").string();
    return "smartcash-worker";
}

}  // namespace smartcash::daemon
