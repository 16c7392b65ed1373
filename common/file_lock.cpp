#include "common/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace smartcash {

namespace {

int recorded_pid(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? std::atoi(buf) : 0;
}

int open_lock_file(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

}  // namespace

std::optional<FileLock> FileLock::try_acquire(const std::string& path, Failure* why,
                                              std::string* error) {
    const int fd = open_lock_file(path, O_RDWR | O_CREAT);
    if (fd < 0) {
        *why = Failure::error;
        *error = "cannot open " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        const int holder = recorded_pid(fd);
        ::close(fd);
        if (err == EWOULDBLOCK) {
            *why = Failure::held;
            *error = holder > 0 ? std::to_string(holder) : std::string();
        } else {
            *why = Failure::error;
            *error = "cannot lock " + path + ": " + std::strerror(err);
        }
        return std::nullopt;
    }
    FileLock lock(fd);
    lock.write_pid(static_cast<int>(::getpid()));
    return std::optional<FileLock>(std::move(lock));
}

bool FileLock::held(const std::string& path, int* holder) {
    *holder = 0;
    const int fd = open_lock_file(path, O_RDONLY);
    if (fd < 0) return false;
    // A shared lock is refused exactly while someone holds the exclusive one.
    const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (busy) *holder = recorded_pid(fd);
    ::close(fd);  // also drops the shared lock, if taken
    return busy;
}

FileLock::~FileLock() {
    if (m_fd >= 0) ::close(m_fd);
}

void FileLock::write_pid(int pid) const {
    const std::string text = std::to_string(pid) + "\n";
    if (::ftruncate(m_fd, 0) == 0) {
        const ssize_t written = ::pwrite(m_fd, text.data(), text.size(), 0);
        (void)written;  // the pid is a courtesy for messages; the flock is what counts
    }
}

}  // namespace smartcash
