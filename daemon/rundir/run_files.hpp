// The supervisor's hold on a run directory: the lock that makes it the only supervisor there,
// the frozen config, and the journal (events.jsonl).
#pragma once

#include <optional>
#include <string>

#include "common/config.hpp"
#include "common/file_lock.hpp"
#include "common/protocol.hpp"

namespace smartcash::daemon {

/// An exclusive flock on RUN_DIR/lock, held for the object's life. The fd is close-on-exec so a
/// worker never inherits it.
class RunLock {
  public:
    /// Takes the lock without waiting. On failure returns nullopt and sets *error to a message
    /// naming the run directory (and the pid recorded by the holder, when readable).
    static std::optional<RunLock> acquire(const std::string& run_dir, std::string* error);
    /// Records this process's pid in the lock file (after a daemonising fork, the new pid).
    void write_pid(int pid) const { m_lock.write_pid(pid); }

  private:
    explicit RunLock(FileLock lock) : m_lock(std::move(lock)) {}
    FileLock m_lock;
};

/// Result of preparing a run directory for a supervisor.
struct PreparedRun {
    Config config;
    std::string warning;  ///< non-empty when the given config differs from the frozen one
};

/// Creates RUN_DIR (and logs/, checkpoints/), then loads the job's config: on the first start
/// `config_file` is loaded, resolved and frozen into RUN_DIR/config.yaml; later starts load the
/// frozen file and warn when `config_file` (if given) says something else. Throws ConfigError
/// for a bad config and IoError for file problems; std::runtime_error when there is no config
/// at all.
PreparedRun prepare_run(const std::string& config_file, const std::string& run_dir);

/// Appends one event to RUN_DIR/events.jsonl with its time ("t", ISO 8601 UTC) first.
class Journal {
  public:
    explicit Journal(std::string run_dir);
    /// The line for one event, stamped with the time now (without '\n').
    static std::string line(const protocol::Json& event);
    /// Appends a line made by line(). Throws IoError (nothing of the line is left behind).
    void write(const std::string& line);
    /// write(line(event)); returns the line.
    std::string append(const protocol::Json& event);

  private:
    std::string m_path;
};

/// "2024-05-01T12:00:00.123Z" for now.
std::string iso_time_now();

}  // namespace smartcash::daemon
