#include "tests/integration/harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/run_dir.hpp"
#include "tests/support/journal.hpp"

namespace smartcash::integration {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
    return std::string(SMARTCASH_FIXTURES_DIR) + "/" + name;
}

Scratch::Scratch(const std::string& name)
    : m_path(std::string(SMARTCASH_INTEGRATION_TMP) + "/" + name) {
    fs::remove_all(m_path);
    fs::create_directories(m_path + "/kept");
}

std::string Scratch::kept(const std::string& checkpoint_path) const {
    return m_path + "/kept/" + fs::path(checkpoint_path).filename().string();
}

std::string Scratch::ballast_wrapper() const {
    const std::string path = file("worker-with-ballast");
    std::ofstream(path) << "#!/bin/sh\n"
                           "run_dir=.\n"
                           "prev=\n"
                           "for a in \"$@\"; do\n"
                           "  [ \"$prev\" = --run-dir ] && run_dir=$a\n"
                           "  prev=$a\n"
                           "done\n"
                           "if [ -n \"$SMARTCASH_TEST_BALLAST\" ]; then\n"
                           "  \"" BALLAST_PATH
                           "\" \"$run_dir\" \"${SMARTCASH_TEST_BALLAST%%:*}\" "
                           "\"${SMARTCASH_TEST_BALLAST#*:}\" &\n"
                           "fi\n"
                           "exec \"" SMARTCASH_WORKER_PATH "\" \"$@\"\n";
    fs::permissions(path, fs::perms::owner_all);
    return path;
}

namespace {

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_file,
            const std::string& err_file) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::unsetenv("SMARTCASH_WORKER");  // the worker is the one given, or smartcashd's default
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

}  // namespace

Daemon::Daemon(const Scratch& scratch, const std::string& config, const std::string& worker,
               const std::string& tag, const std::vector<std::string>& extra,
               const std::vector<std::string>& launcher)
    : m_scratch(scratch), m_err(scratch.file("smartcashd" + tag + ".err")) {
    std::vector<std::string> argv = launcher;
    for (const std::string& a :
         {std::string(SMARTCASHD_PATH), std::string("run"), std::string("--config"), config,
          std::string("--run-dir"), scratch.run()})
        argv.push_back(a);
    if (!worker.empty()) {
        argv.push_back("--worker");
        argv.push_back(worker);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    m_pid = spawn(argv, scratch.file("smartcashd" + tag + ".out"), m_err);
}

Daemon::~Daemon() {
    if (!m_status) kill_hard();
}

void Daemon::kill_hard() {
    if (m_status || m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_status = status;
}

std::string Daemon::stderr_text() const { return slurp(m_err); }

void Daemon::poll_journal(const std::function<void(const Json&)>& on_event) {
    auto all = events(m_scratch);
    for (; m_seen < all.size(); ++m_seen) {
        const Json& e = all[m_seen];
        if (e.value("event", "") == "checkpoint") {
            std::error_code ec;
            const std::string path = e.value("path", "");
            if (!path.empty()) {
                // A later checkpoint of the same step (a stop right after a periodic one)
                // replaces the file: keep the newest.
                fs::remove(m_scratch.kept(path), ec);
                fs::create_hard_link(path, m_scratch.kept(path), ec);
            }
        }
        if (on_event) on_event(e);
    }
}

int Daemon::wait(std::chrono::milliseconds timeout,
                 const std::function<void(const Json&)>& on_event) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!m_status && std::chrono::steady_clock::now() < end) {
        poll_journal(on_event);
        int status = 0;
        if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_status = status;
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
    poll_journal(on_event);
    if (!m_status) {
        kill_hard();
        return -1;
    }
    if (WIFSIGNALED(*m_status)) return 128 + WTERMSIG(*m_status);
    return WIFEXITED(*m_status) ? WEXITSTATUS(*m_status) : -1;
}

bool Daemon::wait_for_event(const std::function<bool(const Json&)>& pred,
                            std::chrono::milliseconds timeout) {
    bool held = false;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!held && !m_status && std::chrono::steady_clock::now() < end) {
        poll_journal([&](const Json& e) { held = held || pred(e); });
        int status = 0;
        if (!held && ::waitpid(m_pid, &status, WNOHANG) == m_pid) m_status = status;
        if (!held) std::this_thread::sleep_for(20ms);
    }
    return held;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<Json> events(const Scratch& s) {
    return test_support::read_journal(run_dir::events(s.run()));
}

std::vector<Json> events_named(const Scratch& s, const std::string& name) {
    return test_support::only_events(events(s), name);
}

std::string dump(const std::vector<Json>& v) {
    std::string s;
    for (auto& j : v) s += j.dump() + "\n";
    return s;
}

Json state_json(const Scratch& s) {
    return Json::parse(slurp(run_dir::state(s.run())), nullptr, false);
}

int run_program(const std::vector<std::string>& argv, std::string* out, bool with_stderr) {
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        if (with_stderr) ::dup2(fds[1], 2);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(fds[1]);
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (out) out->append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Json checkpoint_info(const std::string& file) {
    std::string out;
    run_program({SMARTCASH_WORKER_PATH, "checkpoint-info", file, "--json"}, &out);
    return Json::parse(out, nullptr, false);
}

std::string newest_checkpoint(const Scratch& s) {
    std::string best;
    long best_step = -1;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(run_dir::checkpoints(s.run()), ec)) {
        long step = 0;
        const std::string name = entry.path().filename().string();
        if (std::sscanf(name.c_str(), "step-%ld.pt", &step) == 1 && name.size() > 3 &&
            name.compare(name.size() - 3, 3, ".pt") == 0 && step > best_step) {
            best_step = step;
            best = entry.path().string();
        }
    }
    return best;
}

std::int64_t last_step_at_tier(const Scratch& s, const std::string& tier) {
    std::int64_t best = -1;
    std::ifstream in(run_dir::metrics(s.run()));
    std::string line;
    while (std::getline(in, line)) {
        Json j = Json::parse(line, nullptr, false);
        if (j.is_object() && j.value("type", "") == "step" && j.value("tier", "") == tier)
            best = std::max(best, j.value("step", std::int64_t{-1}));
    }
    return best;
}

// Linux reads the process table from /proc; elsewhere (macOS, no /proc) ps(1) prints it.
#ifndef __linux__
namespace {
// The lines ps(1) prints for `args`.
std::vector<std::string> ps_lines(const std::string& args) {
    std::vector<std::string> lines;
    FILE* ps = ::popen(("ps " + args + " 2>/dev/null").c_str(), "r");
    if (!ps) return lines;
    char buffer[4096];
    std::string line;
    while (std::fgets(buffer, sizeof buffer, ps)) {
        line += buffer;
        if (!line.empty() && line.back() == '\n') {
            line.pop_back();
            lines.push_back(line);
            line.clear();
        }
    }
    if (!line.empty()) lines.push_back(line);
    ::pclose(ps);
    return lines;
}
}  // namespace
#endif

bool process_gone(int pid) {
    if (::kill(pid, 0) != 0) return true;
#ifdef __linux__
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || stat.size() < close + 3 || stat[close + 2] == 'Z' ||
           stat[close + 2] == 'X';
#else
    const auto lines = ps_lines("-o stat= -p " + std::to_string(pid));
    return lines.empty() || lines.front().empty() || lines.front()[0] == 'Z';
#endif
}

std::vector<int> processes_mentioning(const std::string& text) {
    std::vector<int> out;
#ifndef __linux__
    for (const std::string& line : ps_lines("-ax -ww -o pid= -o command=")) {
        const int pid = std::atoi(line.c_str());
        if (pid <= 0 || pid == ::getpid()) continue;
        if (line.find(text) != std::string::npos && !process_gone(pid)) out.push_back(pid);
    }
    return out;
#else
    DIR* proc = ::opendir("/proc");
    if (!proc) return out;
    while (const dirent* e = ::readdir(proc)) {
        const int pid = std::atoi(e->d_name);
        if (pid <= 0 || pid == ::getpid()) continue;
        std::string cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
        for (char& c : cmdline)
            if (c == '\0') c = ' ';
        if (cmdline.find(text) != std::string::npos && !process_gone(pid)) out.push_back(pid);
    }
    ::closedir(proc);
    return out;
#endif
}

}  // namespace smartcash::integration
