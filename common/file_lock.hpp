// An exclusive flock on a file that also records its holder's pid, for the run directory's two
// locks: RUN_DIR/lock (one supervisor per run) and RUN_DIR/worker.lock (held by the training
// worker for its life, so a restarted supervisor can tell that an old worker is still there
// without /proc). The lock goes away with the last process holding the open file, however it
// ends; the fd is close-on-exec so programs the holder starts do not inherit it.
#pragma once

#include <optional>
#include <string>

namespace smartcash {

class FileLock {
  public:
    enum class Failure { held, error };

    /// Takes the lock without waiting and writes this process's pid into the file. On failure
    /// returns nullopt, sets *why (held by someone else, or an I/O error) and *error (for
    /// `held`: the holder's pid when it is recorded, else ""; otherwise the error in words).
    static std::optional<FileLock> try_acquire(const std::string& path, Failure* why,
                                               std::string* error);
    /// Whether someone holds the lock on `path` now; *holder gets the recorded pid (0: unknown).
    /// A missing file is not held.
    static bool held(const std::string& path, int* holder);

    FileLock(FileLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    FileLock& operator=(FileLock&&) = delete;
    FileLock(const FileLock&) = delete;
    ~FileLock();
    /// Records `pid` in the file (after a daemonising fork, the new pid).
    void write_pid(int pid) const;

  private:
    explicit FileLock(int fd) : m_fd(fd) {}
    int m_fd = -1;
};

}  // namespace smartcash
