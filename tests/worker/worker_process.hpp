// Helpers of the worker CLI tests: run the real smartcash-worker binary as a child process
// (fork + execve), with its output in files, optional report/command pipes and resource limits,
// and read what it left behind (exit status, stderr, reports, checkpoints).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace worker_test {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

/// The binary under test; SMARTCASH_TEST_WORKER_BIN overrides the built one (e.g. to try a build
/// from another directory).
inline std::string worker_bin() {
    const char* other = std::getenv("SMARTCASH_TEST_WORKER_BIN");
    return other && *other ? other : SMARTCASH_WORKER_BIN;
}
inline std::string fixture(const std::string& name) {
    return (fs::path(SMARTCASH_CONFIG_DIR) / ".." / "tests" / "fixtures" / name)
        .lexically_normal()
        .string();
}
inline std::string tiny_config() { return fixture("tiny.yaml"); }

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

inline void sleep_s(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

inline double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/// A pipe whose ends close on exec (pipe2 where it exists; macOS has only pipe + fcntl).
inline bool cloexec_pipe(int fds[2]) {
#if defined(__linux__)
    return ::pipe2(fds, O_CLOEXEC) == 0;
#else
    if (::pipe(fds) != 0) return false;
    for (int i = 0; i < 2; ++i) ::fcntl(fds[i], F_SETFD, ::fcntl(fds[i], F_GETFD) | FD_CLOEXEC);
    return true;
#endif
}

/// A TCP port that was free on the loopback a moment ago (the kernel's choice for port 0).
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// How a child ended.
struct ExitStatus {
    bool exited = false;  ///< exited normally with `code`
    int code = -1;
    int signal = 0;  ///< the terminating signal when killed
    bool killed_by(int sig) const { return !exited && signal == sig; }
    std::string describe() const {
        return exited ? "exit " + std::to_string(code) : "signal " + std::to_string(signal);
    }
};

struct LaunchOptions {
    std::vector<std::string> env;       ///< extra "KEY=VALUE" entries
    std::optional<rlim_t> fsize_limit;  ///< RLIMIT_FSIZE set in the child before exec
    bool channel = true;                ///< give the worker report/command pipes
};

/// One run of smartcash-worker. stdout and stderr go to files `<log_base>.out` / `.err`.
/// The destructor SIGKILLs and reaps a child that is still running.
class WorkerProcess {
  public:
    WorkerProcess(const std::vector<std::string>& args, const std::string& log_base,
                  const LaunchOptions& options = {})
        : m_out_path(log_base + ".out"), m_err_path(log_base + ".err") {
        int report[2] = {-1, -1}, command[2] = {-1, -1};
        if (options.channel) {
            if (!cloexec_pipe(report) || !cloexec_pipe(command))
                throw std::runtime_error("cannot create the report/command pipes");
        }
        constexpr int child_report_fd = 20, child_command_fd = 21;

        // Everything the child needs is prepared before fork: after it only async-signal-safe
        // calls are made.
        std::vector<std::string> env_strings;
        for (char** e = environ; *e; ++e) {
            std::string entry = *e;
            if (entry.rfind("SMARTCASH_", 0) == 0) continue;  // no inherited channels or test hooks
            env_strings.push_back(entry);
        }
        if (options.channel) {
            env_strings.push_back("SMARTCASH_REPORT_FD=" + std::to_string(child_report_fd));
            env_strings.push_back("SMARTCASH_COMMAND_FD=" + std::to_string(child_command_fd));
        }
        for (const auto& e : options.env) env_strings.push_back(e);
        std::vector<char*> envp;
        for (auto& e : env_strings) envp.push_back(e.data());
        envp.push_back(nullptr);
        std::vector<std::string> argv_strings{worker_bin()};
        argv_strings.insert(argv_strings.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_strings) argv.push_back(a.data());
        argv.push_back(nullptr);

        const int out_fd =
            ::open(m_out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const int err_fd =
            ::open(m_err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0 || err_fd < 0)
            throw std::runtime_error("cannot create the child's log files");
        struct rlimit fsize {};
        if (options.fsize_limit) fsize.rlim_cur = fsize.rlim_max = *options.fsize_limit;

        m_started = Clock::now();
        m_pid = ::fork();
        if (m_pid < 0) throw std::runtime_error("fork failed");
        if (m_pid == 0) {
            if (options.fsize_limit && ::setrlimit(RLIMIT_FSIZE, &fsize) != 0) ::_exit(126);
            ::dup2(out_fd, STDOUT_FILENO);
            ::dup2(err_fd, STDERR_FILENO);
            if (options.channel) {
                // dup2 clears close-on-exec on the new descriptors; the originals close at exec.
                ::dup2(report[1], child_report_fd);
                ::dup2(command[0], child_command_fd);
            }
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        ::close(out_fd);
        ::close(err_fd);
        if (options.channel) {
            ::close(report[1]);
            ::close(command[0]);
            m_report_fd = report[0];
            m_command_fd = command[1];
            ::fcntl(m_report_fd, F_SETFL, ::fcntl(m_report_fd, F_GETFL) | O_NONBLOCK);
        }
    }

    ~WorkerProcess() {
        if (!m_status) {
            ::kill(m_pid, SIGKILL);
            int status = 0;
            ::waitpid(m_pid, &status, 0);
        }
        if (m_report_fd >= 0) ::close(m_report_fd);
        if (m_command_fd >= 0) ::close(m_command_fd);
    }
    WorkerProcess(const WorkerProcess&) = delete;
    WorkerProcess& operator=(const WorkerProcess&) = delete;

    pid_t pid() const { return m_pid; }
    double age() const { return seconds_since(m_started); }

    /// True while the child has not ended (reaps it when it has).
    bool running() {
        if (m_status) return false;
        int status = 0;
        pid_t r = ::waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid) {
            record(status);
            return false;
        }
        return true;
    }

    void signal(int sig) { ::kill(m_pid, sig); }

    /// Waits for the end (reading reports meanwhile so the worker's writer never stalls).
    ExitStatus wait(double timeout_s = 300) {
        const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
        while (running()) {
            if (Clock::now() > deadline) {
                signal(SIGKILL);
                int status = 0;
                ::waitpid(m_pid, &status, 0);
                record(status);
                throw std::runtime_error("the worker did not end within " +
                                         std::to_string(timeout_s) + " s");
            }
            poll_reports(20);
        }
        poll_reports(0);
        return *m_status;
    }

    /// Reads what is available on the report pipe within `timeout_ms`; returns new messages.
    std::size_t poll_reports(int timeout_ms) {
        if (m_report_fd < 0) {
            if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
            return 0;
        }
        const std::size_t before = m_reports.size();
        struct pollfd p {
            m_report_fd, POLLIN, 0
        };
        if (::poll(&p, 1, timeout_ms) <= 0) return 0;
        char buf[65536];
        while (true) {
            ssize_t n = ::read(m_report_fd, buf, sizeof buf);
            if (n <= 0) break;
            m_pending.append(buf, static_cast<std::size_t>(n));
        }
        std::size_t nl;
        while ((nl = m_pending.find('\n')) != std::string::npos) {
            std::string line = m_pending.substr(0, nl);
            m_pending.erase(0, nl + 1);
            m_reports.push_back(Json::parse(line));  // a malformed line fails the test loudly
        }
        return m_reports.size() - before;
    }

    /// Waits (reading reports) until a report of `type` arrives; nullopt on timeout or exit.
    std::optional<Json> wait_report(const std::string& type, double timeout_s) {
        const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
        std::size_t seen = 0;
        while (Clock::now() < deadline) {
            for (; seen < m_reports.size(); ++seen)
                if (m_reports[seen].value("type", "") == type) return m_reports[seen];
            if (!running()) {
                poll_reports(0);
                for (; seen < m_reports.size(); ++seen)
                    if (m_reports[seen].value("type", "") == type) return m_reports[seen];
                return std::nullopt;
            }
            poll_reports(10);
        }
        return std::nullopt;
    }

    void send_command(const Json& command) {
        const std::string line = command.dump() + "\n";
        if (::write(m_command_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            throw std::runtime_error("cannot write to the command pipe");
    }

    /// Closes the command pipe: the child reads end of file.
    void close_commands() {
        if (m_command_fd >= 0) ::close(m_command_fd);
        m_command_fd = -1;
    }

    const std::vector<Json>& reports() const { return m_reports; }
    std::vector<Json> reports_of(const std::string& type) const {
        std::vector<Json> out;
        for (const auto& r : m_reports)
            if (r.value("type", "") == type) out.push_back(r);
        return out;
    }
    std::string err() const { return read_text(m_err_path); }
    std::string out() const { return read_text(m_out_path); }

  private:
    void record(int status) {
        ExitStatus s;
        if (WIFEXITED(status)) {
            s.exited = true;
            s.code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            s.signal = WTERMSIG(status);
        }
        m_status = s;
    }

    std::string m_out_path, m_err_path;
    pid_t m_pid = -1;
    int m_report_fd = -1, m_command_fd = -1;
    std::optional<ExitStatus> m_status;
    std::string m_pending;
    std::vector<Json> m_reports;
    Clock::time_point m_started;
};

/// `smartcash-worker checkpoint-info FILE --json`: its exit code and parsed output.
struct CheckpointInfo {
    int code = -1;
    Json json;
};

inline CheckpointInfo checkpoint_info(const std::string& file, const std::string& log_base) {
    WorkerProcess p({"checkpoint-info", file, "--json"}, log_base, LaunchOptions{{}, {}, false});
    CheckpointInfo info;
    auto status = p.wait(120);
    info.code = status.exited ? status.code : -1;
    const std::string out = p.out();
    info.json = Json::parse(out.empty() ? std::string("{}") : out);
    return info;
}

/// Step checkpoint files (step-NNNNNNNN.pt) of a run directory by step.
inline std::map<std::int64_t, std::string> step_checkpoints(const std::string& run_dir) {
    std::map<std::int64_t, std::string> out;
    const fs::path dir = fs::path(run_dir) / "checkpoints";
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        long long step = 0;
        char tail[8] = {0};
        if (std::sscanf(name.c_str(), "step-%lld.%3s", &step, tail) == 2 &&
            std::string(tail) == "pt")
            out[step] = e.path().string();
    }
    return out;
}

/// Temporary files an interrupted atomic write leaves in the checkpoint directory.
inline std::vector<std::string> temp_files(const std::string& run_dir) {
    std::vector<std::string> out;
    const fs::path dir = fs::path(run_dir) / "checkpoints";
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.find(".tmp.") != std::string::npos) out.push_back(name);
    }
    return out;
}

/// The lines of metrics.jsonl whose "type" is `type` ("step", "epoch"), in order.
inline std::vector<Json> metric_lines(const std::string& run_dir, const std::string& type) {
    std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
    std::string line;
    std::vector<Json> out;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        Json j = Json::parse(line);
        if (j.value("type", "") == type) out.push_back(std::move(j));
    }
    return out;
}

/// Number of optimizer steps recorded in metrics.jsonl ("type":"step" lines).
inline int metric_step_lines(const std::string& run_dir) {
    return static_cast<int>(metric_lines(run_dir, "step").size());
}

inline int count_of(const std::string& text, const std::string& needle) {
    int n = 0;
    for (auto at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + needle.size()))
        ++n;
    return n;
}

}  // namespace worker_test

// ---- Test fixture and the uninterrupted reference runs ----------------------------------------

#include <gtest/gtest.h>

namespace worker_test {

/// A temp directory per test under SMARTCASH_TEST_TMP, removed afterwards.
class WorkerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        m_dir = (fs::path(SMARTCASH_TEST_TMP) / (std::string(info->test_suite_name()) + "." +
                                                 info->name() + "." + std::to_string(::getpid())))
                    .string();
        fs::remove_all(m_dir);
        fs::create_directories(m_dir + "/logs");
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(m_dir, ignored);
    }

    const std::string& dir() const { return m_dir; }
    std::string run_dir(const std::string& name = "run") const { return m_dir + "/" + name; }
    /// A fresh log file base for one launch.
    std::string log_base(const std::string& what) {
        return m_dir + "/logs/" + what + "-" + std::to_string(m_launches++);
    }

    std::unique_ptr<WorkerProcess> train(const std::string& run_dir,
                                         const std::string& tier = "big",
                                         const LaunchOptions& options = {},
                                         const std::string& config = tiny_config()) {
        return std::make_unique<WorkerProcess>(
            std::vector<std::string>{"train", "--config", config, "--run-dir", run_dir, "--tier",
                                     tier},
            log_base("train"), options);
    }

    CheckpointInfo info(const std::string& file) { return checkpoint_info(file, log_base("info")); }

    /// Writes a copy of tiny.yaml with each `from` replaced by its `to`; returns its path.
    std::string changed_config(const std::string& name,
                               const std::vector<std::pair<std::string, std::string>>& changes) {
        std::string text = read_text(tiny_config());
        for (const auto& [from, to] : changes) {
            const auto at = text.find(from);
            EXPECT_NE(at, std::string::npos) << from;
            if (at != std::string::npos) text.replace(at, from.size(), to);
        }
        const std::string path = m_dir + "/" + name;
        write_text(path, text);
        return path;
    }
    std::string changed_config(const std::string& name, const std::string& from,
                               const std::string& to) {
        return changed_config(name, {{from, to}});
    }

    /// weights_sha256 of the newest step checkpoint of a run (asserted valid), and its step.
    std::pair<std::string, std::int64_t> final_hash(const std::string& run_dir) {
        auto files = step_checkpoints(run_dir);
        if (files.empty()) return {"(no checkpoint)", -1};
        auto ci = info(files.rbegin()->second);
        EXPECT_EQ(ci.code, 0) << ci.json.dump();
        EXPECT_TRUE(ci.json.value("valid", false)) << ci.json.dump();
        return {ci.json.value("weights_sha256", std::string()),
                ci.json.value("step", std::int64_t{-1})};
    }

  private:
    std::string m_dir;
    int m_launches = 0;
};

/// What an uninterrupted run of tiny.yaml on one tier ends with.
struct Reference {
    std::string hash;
    std::int64_t final_step = 0;
    std::int64_t total_steps = 0;
    double startup_s = 0;                                     ///< launch to hello
    double wall_s = 0;                                        ///< launch to exit
    std::map<std::int64_t, std::uintmax_t> checkpoint_sizes;  ///< by step, as reported
};

/// A run's final weights (final_hash()) equal the uninterrupted reference's, at the same step.
inline void expect_reference_weights(const std::pair<std::string, std::int64_t>& final,
                                     const Reference& ref) {
    EXPECT_EQ(final.second, ref.final_step);
    EXPECT_EQ(final.first, ref.hash);
}

/// A SHA-256 as checkpoint info prints it: 64 lowercase hex digits.
inline bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// Runs (once per test process and tier) the uninterrupted reference; throws unless it ends with a
/// valid checkpoint whose weights hash is a real SHA-256. The tier is a C string: a std::string
/// made from a literal at the call would be a temporary that a returned reference outlives.
inline const Reference& reference(const char* tier_name) {
    const std::string tier = tier_name;
    static std::mutex mutex;
    static std::map<std::string, Reference> cache;
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(tier); it != cache.end()) return it->second;
    const std::string dir =
        (fs::path(SMARTCASH_TEST_TMP) / ("reference-" + tier + "-" + std::to_string(::getpid())))
            .string();
    fs::remove_all(dir);
    fs::create_directories(dir);
    Reference ref;
    {
        WorkerProcess p(
            {"train", "--config", tiny_config(), "--run-dir", dir + "/run", "--tier", tier},
            dir + "/train");
        std::size_t seen = 0;
        while (p.running()) {
            p.poll_reports(5);
            for (; seen < p.reports().size(); ++seen) {
                const auto& r = p.reports()[seen];
                const std::string type = r.value("type", "");
                if (type == "hello") {
                    ref.startup_s = p.age();
                    ref.total_steps = r.value("total_steps", std::int64_t{0});
                } else if (type == "checkpoint") {
                    std::error_code ec;
                    auto size = fs::file_size(r.value("path", std::string()), ec);
                    if (!ec) ref.checkpoint_sizes[r.value("step", std::int64_t{-1})] = size;
                }
            }
        }
        auto status = p.wait();
        ref.wall_s = p.age();
        if (!status.exited || status.code != 0)
            throw std::runtime_error("the reference run failed (" + status.describe() +
                                     "): " + p.err());
        auto files = step_checkpoints(dir + "/run");
        if (files.empty())
            throw std::runtime_error("the reference run left no step checkpoint: " + p.err());
        auto ci = checkpoint_info(files.rbegin()->second, dir + "/info");
        if (ci.code != 0 || !ci.json.value("valid", false))
            throw std::runtime_error("the reference checkpoint " + files.rbegin()->second +
                                     " is not valid: " + ci.json.dump());
        ref.hash = ci.json.value("weights_sha256", std::string());
        ref.final_step = ci.json.value("step", std::int64_t{-1});
        if (!is_sha256_hex(ref.hash))
            throw std::runtime_error(
                "the reference checkpoint has no 64-hex-digit weights_sha256: " + ci.json.dump());
        if (ref.final_step < 0)
            throw std::runtime_error("the reference checkpoint has no step: " + ci.json.dump());
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return cache.emplace(tier, ref).first->second;
}

}  // namespace worker_test
