#include "daemon/rundir/run_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/atomic_file.hpp"
#include "common/file_lock.hpp"
#include "common/run_dir.hpp"

namespace smartcash::daemon {

std::optional<RunLock> RunLock::acquire(const std::string& run_dir, std::string* error) {
    FileLock::Failure why{};
    std::string detail;
    auto lock = FileLock::try_acquire(run_dir::lock(run_dir), &why, &detail);
    if (lock) return RunLock(std::move(*lock));
    if (why == FileLock::Failure::held)
        *error = "another supervisor is running in " + run_dir +
                 (detail.empty() ? std::string() : " (pid " + detail + ")") +
                 "; use smartcashctl --run-dir " + run_dir + " to talk to it";
    else
        *error = detail;
    return std::nullopt;
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
    const char* name = protocol::event_key;
    if (event.contains(name)) text += ",\"" + std::string(name) + "\":" + event[name].dump();
    for (const auto& [key, value] : event.items()) {
        if (key == name || key == "t") continue;
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
