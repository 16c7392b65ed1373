#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace smartcash {
namespace {

std::string io_message(const std::string& path, int error_code, const std::string& operation) {
    return operation + " " + path + ": " + std::strerror(error_code);
}

std::string parent_directory(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

/// Writes all of `data`, retrying short writes and EINTR. Returns 0 or the errno.
int write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;  // should not happen for regular files; avoid spinning
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

int fsync_retry(int fd) {
#if defined(__APPLE__)
    // fsync on macOS only hands the data to the drive; F_FULLFSYNC asks the drive to write it.
    // Some file systems (network, FUSE) do not support it: fall back to fsync there.
    if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    while (::fsync(fd) != 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

/// Closes a file descriptor on scope exit unless released.
class FdGuard {
  public:
    explicit FdGuard(int fd) : m_fd(fd) {}
    ~FdGuard() {
        if (m_fd >= 0) ::close(m_fd);
    }
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    int get() const { return m_fd; }
    /// Closes now and reports close's errno (0 on success); some file systems report write
    /// errors only here.
    int close_now() {
        int fd = m_fd;
        m_fd = -1;
        return ::close(fd) == 0 ? 0 : errno;
    }

  private:
    int m_fd;
};

}  // namespace

IoError::IoError(std::string path, int error_code, const std::string& operation)
    : std::runtime_error(io_message(path, error_code, operation)),
      m_path(std::move(path)),
      m_error_code(error_code) {}

void write_file_atomic(const std::string& path, std::string_view data) {
    static std::atomic<unsigned> counter{0};
    // Unique per process and call, hidden (leading dot) and in the same directory so the
    // rename cannot cross file systems.
    std::string dir = parent_directory(path);
    auto slash = path.find_last_of('/');
    std::string prefix = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    std::string temp = prefix + "." + base + ".tmp." + std::to_string(::getpid()) + "." +
                       std::to_string(counter++);

    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError(path, errno, "cannot create a temporary file for");
    FdGuard guard(fd);

    auto fail = [&](int error_code, const char* operation) {
        if (guard.get() >= 0) guard.close_now();
        ::unlink(temp.c_str());
        throw IoError(path, error_code, operation);
    };

    // Keep the permissions of the file being replaced (a user may have tightened them).
    struct stat old_stat;
    if (::stat(path.c_str(), &old_stat) == 0) ::fchmod(fd, old_stat.st_mode & 07777);

    if (int e = write_all(fd, data.data(), data.size())) fail(e, "cannot write");
    if (int e = fsync_retry(fd)) fail(e, "cannot sync");
    if (int e = guard.close_now()) fail(e, "cannot close");
    if (::rename(temp.c_str(), path.c_str()) != 0) fail(errno, "cannot rename a temporary file to");
    fsync_directory(dir);
}

void append_line_durable(const std::string& path, std::string_view line, bool fsync) {
    std::string buffer(line);
    if (buffer.empty() || buffer.back() != '\n') buffer.push_back('\n');

    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError(path, errno, "cannot open for appending");
    FdGuard guard(fd);
    struct stat before;
    if (::fstat(fd, &before) != 0) throw IoError(path, errno, "cannot stat");

    if (int e = write_all(fd, buffer.data(), buffer.size())) {
        // Best effort: a torn last line would make the journal unreadable at that line.
        // If even that fails there is nothing better to do than report the write error.
        [[maybe_unused]] int ignored = ::ftruncate(fd, before.st_size);
        throw IoError(path, e, "cannot append to");
    }
    if (fsync) {
        if (int e = fsync_retry(fd)) throw IoError(path, e, "cannot sync");
        // A new file is only durable once its directory entry is.
        if (before.st_size == 0) fsync_directory(parent_directory(path));
    }
    if (int e = guard.close_now()) throw IoError(path, e, "cannot close");
}

std::string read_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(path, errno, "cannot open");
    FdGuard guard(fd);
    std::string out;
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
    char buffer[1 << 16];
    while (true) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw IoError(path, errno, "cannot read");
        }
        if (n == 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

void fsync_directory(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw IoError(dir, errno, "cannot open directory");
    FdGuard guard(fd);
    int e = fsync_retry(fd);
    if (e != 0 && e != EINVAL) throw IoError(dir, e, "cannot sync directory");
}

void make_directories(const std::string& path) {
    if (path.empty()) throw IoError(path, ENOENT, "cannot create directory");
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        std::string prefix = path.substr(0, pos);
        if (prefix.empty() || prefix == "/") continue;
        if (::mkdir(prefix.c_str(), 0755) == 0) continue;
        int e = errno;
        struct stat st;
        if (e == EEXIST || e == EROFS || e == EACCES) {
            // An existing directory on the way is fine, even where we could not create it.
            if (::stat(prefix.c_str(), &st) == 0) {
                if (S_ISDIR(st.st_mode)) continue;
                throw IoError(prefix, ENOTDIR, "cannot create directory");
            }
        }
        throw IoError(prefix, e, "cannot create directory");
    }
}

void ignore_file_size_signal() { std::signal(SIGXFSZ, SIG_IGN); }

}  // namespace smartcash
