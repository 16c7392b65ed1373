#include "daemon/core/run_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/atomic_file.hpp"
#include "common/run_dir.hpp"

namespace smartcash::daemon {

std::optional<RunLock> RunLock::acquire(const std::string& run_dir, std::string* error) {
    const std::string path = run_dir::lock(run_dir);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = "cannot open " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[32] = {};
        const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
        ::close(fd);
        if (err == EWOULDBLOCK) {
            std::string holder =
                n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
            while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
                holder.pop_back();
            *error = "another supervisor is running in " + run_dir +
                     (holder.empty() ? std::string() : " (pid " + holder + ")") +
                     "; use smartcashctl --run-dir " + run_dir + " to talk to it";
        } else {
            *error = "cannot lock " + path + ": " + std::strerror(err);
        }
        return std::nullopt;
    }
    RunLock lock(fd);
    lock.write_pid(static_cast<int>(::getpid()));
    return std::optional<RunLock>(std::move(lock));
}

RunLock::~RunLock() {
    if (m_fd >= 0) ::close(m_fd);
}

void RunLock::write_pid(int pid) const {
    const std::string text = std::to_string(pid) + "\n";
    if (::ftruncate(m_fd, 0) == 0) {
        const ssize_t written = ::pwrite(m_fd, text.data(), text.size(), 0);
        (void)written;  // the pid is a courtesy for error messages; the flock is what counts
    }
}

PreparedRun prepare_run(const std::string& config_file, const std::string& run_dir) {
    make_directories(run_dir);
    make_directories(run_dir::logs(run_dir));
    make_directories(run_dir::checkpoints(run_dir));
    const std::string frozen = run_dir::config(run_dir);
    PreparedRun out;
    if (std::filesystem::exists(frozen)) {
        out.config = load_config(frozen);
        if (!config_file.empty()) {
            const std::string given = dump_config(load_config(config_file));
            if (given != dump_config(out.config))
                out.warning =
                    config_file + " differs from the frozen " + frozen +
                    "; the frozen config is used (start a new run directory to change it)";
        }
        return out;
    }
    if (config_file.empty())
        throw std::runtime_error("no config: " + frozen +
                                 " does not exist and no --config was given");
    const Config loaded = load_config(config_file);
    write_file_atomic(frozen, dump_config(loaded));
    // Load what was frozen so that this start and every later one see exactly the same values.
    out.config = load_config(frozen);
    return out;
}

std::string iso_time_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
    return out;
}

Journal::Journal(std::string run_dir) : m_path(run_dir::events(run_dir)) {}

std::string Journal::line(const protocol::Json& event) {
    // "t" and "event" lead the line so the journal reads well with plain tools.
    std::string text = "{\"t\":" + protocol::Json(iso_time_now()).dump();
    if (event.contains("event")) text += ",\"event\":" + event["event"].dump();
    for (const auto& [key, value] : event.items()) {
        if (key == "event" || key == "t") continue;
        text += "," + protocol::Json(key).dump() + ":" +
                value.dump(-1, ' ', false, protocol::Json::error_handler_t::replace);
    }
    text += "}";
    return text;
}

void Journal::write(const std::string& line) { append_line_durable(m_path, line, /*fsync=*/true); }

std::string Journal::append(const protocol::Json& event) {
    std::string text = line(event);
    write(text);
    return text;
}

}  // namespace smartcash::daemon
