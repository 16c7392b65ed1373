#include "daemon/shell/worker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "daemon/shell/boost_process.hpp"

namespace smartcash::daemon {

ProcessEnd decode_wait_status(int status) {
    ProcessEnd end;
    if (WIFEXITED(status))
        end.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        end.signal = WTERMSIG(status);
    return end;
}

namespace {

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Runs in the child between fork and exec (only async-signal-safe calls), and in the parent
// when the exec failed.
struct ChildSetup : bp::extend::handler {
    int report_fd;
    int command_fd;
    pid_t parent;

    template <class Executor>
    void on_exec_setup(Executor&) const {
        ::setpgid(0, 0);
#ifdef __linux__
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        // The supervisor may have died before prctl took effect.
        if (::getppid() != parent) ::_exit(127);
#endif
        // The supervisor ignores these; the worker should not inherit that.
        ::signal(SIGPIPE, SIG_DFL);
        ::signal(SIGXFSZ, SIG_DFL);
        // Everything the supervisor holds (lock, control socket, event loop fds) is closed on
        // exec; only the two channel fds survive. Boost's own exec-error pipe is already
        // close-on-exec, so a failed exec can still report.
        bool marked = false;
#ifdef SYS_close_range
        marked = ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0;
#endif
        if (!marked) {
            rlimit lim{};
            long top = 4096;
            if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
                top = static_cast<long>(lim.rlim_cur < 65536 ? lim.rlim_cur : 65536);
            for (long fd = 3; fd < top; ++fd) {
                const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
                if (flags >= 0) ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
            }
        }
        ::fcntl(report_fd, F_SETFD, 0);
        ::fcntl(command_fd, F_SETFD, 0);
    }

    template <class Executor>
    void on_error(Executor& exec, const std::error_code&) const {
        // Boost.Process leaves a child whose exec failed unreaped; it has already exited.
        if (exec.pid > 0) {
            int status = 0;
            while (::waitpid(exec.pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }
};

struct Pipe {
    int read = -1;
    int write = -1;
    ~Pipe() {
        if (read >= 0) ::close(read);
        if (write >= 0) ::close(write);
    }
    bool open() {
        int fds[2];
#ifdef __linux__
        if (::pipe2(fds, O_CLOEXEC) != 0) return false;
#else
        if (::pipe(fds) != 0) return false;
        ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
        read = fds[0];
        write = fds[1];
        return true;
    }
    int release_read() {
        const int fd = read;
        read = -1;
        return fd;
    }
    int release_write() {
        const int fd = write;
        write = -1;
        return fd;
    }
};

bool is_cannot_execute(int error) {
    return error == ENOENT || error == EACCES || error == ENOEXEC || error == ENOTDIR ||
           error == ELOOP || error == EISDIR || error == ENAMETOOLONG || error == EPERM;
}

}  // namespace

// SIGCHLD is registered before any fork, so a child that ends at once is still noticed: the
// signal set queues it until the first wait.
WorkerProcess::WorkerProcess(boost::asio::io_context& io)
    : m_io(io), m_sigchld(io, SIGCHLD), m_report(io), m_command(io), m_drain_timer(io) {}

// Never kills: the supervisor decides when a worker dies. A worker still running when its
// supervisor goes away gets SIGTERM from PR_SET_PDEATHSIG (Linux) or sees its pipes close.
WorkerProcess::~WorkerProcess() = default;

std::optional<StartError> WorkerProcess::start(const LaunchSpec& spec, ReportHandler on_report,
                                               LineErrorHandler on_bad_line, ExitHandler on_exit) {
    m_on_report = std::move(on_report);
    m_on_bad_line = std::move(on_bad_line);
    m_on_exit = std::move(on_exit);

    Pipe report, command;
    if (!report.open() || !command.open())
        return StartError{std::string("cannot create pipes: ") + std::strerror(errno)};

    bp::environment env = boost::this_process::environment();
    for (const auto& [key, value] : spec.env) env[key] = value;
    env[protocol::report_fd_env] = std::to_string(report.write);
    env[protocol::command_fd_env] = std::to_string(command.read);

    ChildSetup setup;
    setup.report_fd = report.write;
    setup.command_fd = command.read;
    setup.parent = ::getpid();

    // No io_context and no on_exit for Boost.Process: its SIGCHLD service would run the exit
    // handler from inside this constructor when the child dies at once. The child is detached
    // here and reaped by try_reap() on this object's own SIGCHLD wait.
    std::error_code ec;
    bp::child child(bp::exe = spec.executable, bp::args = spec.args, env,
                    bp::std_in<boost::filesystem::path("/dev/null"), (bp::std_out & bp::std_err)>
                        boost::filesystem::path(spec.log_path),
                    setup, bp::error = ec);
    if (ec) {
        return StartError{"cannot start " + spec.executable + ": " + ec.message(),
                          is_cannot_execute(ec.value())};
    }
    m_pid = child.id();
    child.detach();
    // The child has its ends; ours are the report reader and the command writer.
    ::close(report.release_write());
    ::close(command.release_read());
    m_report.assign(report.release_read());
    const int command_fd = command.release_write();
    ::fcntl(command_fd, F_SETFL, ::fcntl(command_fd, F_GETFL) | O_NONBLOCK);
    m_command.assign(command_fd);
    read_reports();
    wait_child_signal();
    // A SIGCHLD for this child may have been taken by another signal set's wait: look once now.
    auto self = shared_from_this();
    boost::asio::post(m_io, [self] { self->try_reap(); });
    return std::nullopt;
}

void WorkerProcess::wait_child_signal() {
    auto self = shared_from_this();
    m_sigchld.async_wait([self](const boost::system::error_code& ec, int) {
        if (ec || self->m_closed || self->reaped()) return;
        self->try_reap();
        if (!self->reaped()) self->wait_child_signal();
    });
}

void WorkerProcess::try_reap() {
    if (reaped() || m_pid <= 0) return;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(m_pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return;  // still running
    m_end = r == m_pid ? decode_wait_status(status) : ProcessEnd{};
    // Helpers the worker started (its process group) die with it, like systemd's
    // KillMode=control-group: they would keep their memory and escape the next launch's probe.
    // The group id stays reserved while any member lives, so this cannot hit a stranger.
    ::kill(-m_pid, SIGKILL);
    boost::system::error_code ignored;
    m_sigchld.cancel(ignored);
    if (m_report_eof) {
        finish();
        return;
    }
    // Reports written just before the exit may still be in the pipe: let the reader drain it so
    // that a final checkpoint or error is seen before the exit is classified. A helper process
    // that inherited the pipe could keep it open, so do not wait long.
    auto self = shared_from_this();
    m_drain_timer.expires_after(std::chrono::seconds(2));
    m_drain_timer.async_wait([self](const boost::system::error_code& e) {
        if (!e) self->finish();
    });
}

void WorkerProcess::read_reports() {
    auto self = shared_from_this();
    m_report.async_read_some(
        boost::asio::buffer(m_read_buffer),
        [self](const boost::system::error_code& ec, std::size_t n) {
            if (self->m_exited) return;
            if (ec) {
                self->m_report_eof = true;
                if (self->m_end) self->finish();
                return;
            }
            self->m_splitter.feed(self->m_read_buffer.data(), n);
            while (auto line = self->m_splitter.next()) {
                if (line->empty()) continue;
                std::string error;
                auto message = protocol::decode(*line, &error);
                if (message)
                    self->m_on_report(*message);
                else if (self->m_on_bad_line)
                    self->m_on_bad_line(error);
                if (self->m_exited) return;
            }
            if (self->m_splitter.take_overflow() && self->m_on_bad_line) {
                self->m_on_bad_line("report line longer than the limit; dropped");
            }
            self->read_reports();
        });
}

void WorkerProcess::finish() {
    if (m_exited || !m_end) return;
    m_exited = true;
    m_closed = true;
    boost::system::error_code ignored;
    m_drain_timer.cancel();
    m_sigchld.cancel(ignored);
    m_report.close(ignored);
    m_command.close(ignored);
    m_outbox.clear();
    auto handler = std::move(m_on_exit);
    m_on_report = nullptr;
    m_on_bad_line = nullptr;
    if (handler) handler(*m_end);
}

void WorkerProcess::signal(int sig) {
    // Once reaped, the pid (and the group id, when the group is empty) may be someone else's.
    if (reaped() || m_pid <= 0) return;
    // Until reaped the pid is still ours (alive or a zombie); the group is set before exec.
    if (::kill(-m_pid, sig) != 0) ::kill(m_pid, sig);
}

void WorkerProcess::send(const protocol::Json& command) {
    if (m_exited) return;
    m_outbox.push_back(protocol::encode(command));
    if (!m_writing) write_next();
}

void WorkerProcess::write_next() {
    if (m_outbox.empty() || m_exited) {
        m_writing = false;
        return;
    }
    m_writing = true;
    auto self = shared_from_this();
    boost::asio::async_write(m_command, boost::asio::buffer(m_outbox.front()),
                             [self](const boost::system::error_code& ec, std::size_t) {
                                 if (ec) {
                                     // The worker closed its end; the exit handler follows.
                                     self->m_outbox.clear();
                                     self->m_writing = false;
                                     return;
                                 }
                                 self->m_outbox.pop_front();
                                 self->write_next();
                             });
}

}  // namespace smartcash::daemon
