// smartcashd: the supervisor. `run` in the foreground, `start` detached.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/config.hpp"
#include "common/listen_address.hpp"
#include "common/run_dir.hpp"
#include "daemon/rundir/run_files.hpp"
#include "daemon/shell/self_path.hpp"
#include "daemon/shell/supervisor.hpp"

namespace {

using namespace smartcash;
using namespace smartcash::daemon;

const char* const usage_text =
    "usage: smartcashd run   --config FILE [--run-dir DIR] [--worker PATH] [--follow] [-v]\n"
    "       smartcashd start --config FILE [--run-dir DIR] [--worker PATH]\n"
    "       (both also take [--nnodes N --node-rank R --master HOST:PORT [--lost-after S]])\n"
    "\n"
    "  run     supervise the job in the foreground (terminal, systemd, launchd); logs to stderr\n"
    "  start   the same, detached; prints the pid and the control socket once it is up\n"
    "\n"
    "  --config FILE   the job's config; frozen into RUN_DIR/config.yaml on the first start\n"
    "                  (optional when RUN_DIR already holds one)\n"
    "  --run-dir DIR   the run directory (default: ./runs/<config file name without extension>)\n"
    "  --worker PATH   the worker executable (default: $SMARTCASH_WORKER, else smartcash-worker\n"
    "                  next to smartcashd)\n"
    "  --follow        (run) on a terminal, a live progress block under the log lines;\n"
    "                  elsewhere, also copy the worker's log lines\n"
    "  -v, --verbose   also show periodic checkpoints and epoch ends (and, with the live\n"
    "                  block, the worker's log lines)\n"
    "\n"
    "  several machines, data-parallel (docs/distributed.md); one smartcashd per machine:\n"
    "  --nnodes N          number of ranks (default: $WORLD_SIZE, else 1)\n"
    "  --node-rank R       this machine's rank, 0..N-1 (default: $RANK, else 0)\n"
    "  --master HOST:PORT  where rank 0 serves the store the ranks agree through\n"
    "                      (default: $MASTER_ADDR:$MASTER_PORT)\n"
    "  --lost-after S      seconds without news of a rank before the others stop (default 30)\n"
    "\n"
    "exit status: 0 job done, 1 job failed or could not start, 2 usage, 3 stopped before done\n";

struct Options {
    std::string command;
    std::string config;
    std::string run_dir;
    std::string worker;
    bool follow = false;
    bool verbose = false;
    WorldOptions world;
};

bool parse_master(const std::string& text, WorldOptions* w) {
    return parse_host_port(text, &w->master_addr, &w->master_port);
}

std::optional<Options> parse(int argc, char** argv, std::string* error) {
    std::vector<std::string> args(argv + 1, argv + argc);
    Options o;
    if (auto bad =
            world_from_environment(o.world, [](const char* name) { return std::getenv(name); })) {
        *error = *bad;
        return std::nullopt;
    }
    if (args.empty()) {
        *error = "missing command";
        return std::nullopt;
    }
    o.command = args[0];
    if (o.command == "-h" || o.command == "--help" || o.command == "help") {
        o.command = "help";
        return o;
    }
    if (o.command != "run" && o.command != "start") {
        *error = "unknown command \"" + o.command + "\"";
        return std::nullopt;
    }
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::string* out) {
            if (i + 1 >= args.size()) {
                *error = a + " needs a value";
                return false;
            }
            *out = args[++i];
            return true;
        };
        if (a == "--config") {
            if (!value(&o.config)) return std::nullopt;
        } else if (a == "--run-dir") {
            if (!value(&o.run_dir)) return std::nullopt;
        } else if (a == "--worker") {
            if (!value(&o.worker)) return std::nullopt;
        } else if (a == "--nnodes" || a == "--node-rank") {
            std::string text;
            if (!value(&text)) return std::nullopt;
            const auto n = whole_number(text.c_str());
            if (!n) {
                *error = a + " needs a whole number, not \"" + text + "\"";
                return std::nullopt;
            }
            (a == "--nnodes" ? o.world.world_size : o.world.rank) = *n;
        } else if (a == "--master") {
            std::string text;
            if (!value(&text)) return std::nullopt;
            if (!parse_master(text, &o.world)) {
                *error = "--master needs HOST:PORT, not \"" + text + "\"";
                return std::nullopt;
            }
        } else if (a == "--lost-after") {
            std::string text;
            if (!value(&text)) return std::nullopt;
            try {
                o.world.lost_after_s = std::stod(text);
            } catch (const std::exception&) {
                *error = "--lost-after needs seconds, not \"" + text + "\"";
                return std::nullopt;
            }
        } else if (a == "--follow") {
            o.follow = true;
        } else if (a == "-v" || a == "--verbose") {
            o.verbose = true;
        } else if (a == "-h" || a == "--help") {
            o.command = "help";
            return o;
        } else {
            *error = "unknown argument \"" + a + "\"";
            return std::nullopt;
        }
    }
    if (o.config.empty() && o.run_dir.empty()) {
        *error = "--config is required (or --run-dir of a run that already has one)";
        return std::nullopt;
    }
    if (auto bad = check_world(o.world)) {
        *error = *bad;
        return std::nullopt;
    }
    if (o.run_dir.empty()) o.run_dir = run_dir::default_for(o.config);
    return o;
}

// Everything up to the event loop: lock, config, supervisor. Errors are printed and give 1.
int supervise(const Options& o, std::function<void()> on_ready,
              std::function<void(const std::string&)> on_error) {
    auto fail = [&](const std::string& message) {
        if (on_error) on_error(message);
        std::cerr << "smartcashd: " << message << std::endl;
        return supervisor_exit::failed;
    };
    std::string run_dir;
    try {
        make_directories(o.run_dir);
        run_dir = std::filesystem::absolute(o.run_dir).lexically_normal().string();
        while (run_dir.size() > 1 && run_dir.back() == '/') run_dir.pop_back();
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    std::string lock_error;
    auto lock = RunLock::acquire(run_dir, &lock_error);
    if (!lock) return fail(lock_error);
    PreparedRun prepared;
    try {
        prepared = prepare_run(o.config, run_dir);
    } catch (const ConfigError& e) {
        return fail(std::string("config error: ") + e.what());
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    if (!prepared.warning.empty())
        std::cerr << "smartcashd: warning: " << prepared.warning << std::endl;
    SupervisorOptions so;
    so.run_dir = run_dir;
    so.worker_path = resolve_worker_path(o.worker);
    so.follow_worker_log = o.follow;
    so.verbose = o.verbose;
    so.world = o.world;
    so.on_ready = std::move(on_ready);
    so.on_startup_error = std::move(on_error);
    Supervisor supervisor(std::move(prepared.config), so);
    return supervisor.run();
}

// Detaches (fork, setsid, fork) and reports back through a pipe once the socket is up.
int start_detached(const Options& o) {
    int ready[2];
    if (::pipe(ready) != 0) {
        std::cerr << "smartcashd: pipe: " << std::strerror(errno) << std::endl;
        return supervisor_exit::failed;
    }
    const pid_t first = ::fork();
    if (first < 0) {
        std::cerr << "smartcashd: fork: " << std::strerror(errno) << std::endl;
        return supervisor_exit::failed;
    }
    if (first == 0) {
        ::close(ready[0]);
        ::setsid();
        const pid_t second = ::fork();
        if (second != 0) ::_exit(second < 0 ? 1 : 0);
        ::fcntl(ready[1], F_SETFD, FD_CLOEXEC);
        // The daemon's own log replaces the terminal; the first lines go there too.
        std::string log_path;
        try {
            make_directories(o.run_dir + "/logs");
            log_path = o.run_dir + "/logs/smartcashd.log";
        } catch (const std::exception&) {
            log_path = "/dev/null";
        }
        const int devnull = ::open("/dev/null", O_RDONLY);
        const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull >= 0) ::dup2(devnull, 0);
        if (log >= 0) {
            ::dup2(log, 1);
            ::dup2(log, 2);
        }
        if (devnull > 2) ::close(devnull);
        if (log > 2) ::close(log);
        const int fd = ready[1];
        auto say = [fd](const std::string& text) {
            const std::string line = text + "\n";
            const ssize_t n = ::write(fd, line.data(), line.size());
            (void)n;
        };
        const int code = supervise(
            o, [&] { say("ok " + std::to_string(::getpid())); },
            [&](const std::string& m) { say("error " + m); });
        ::_exit(code);
    }
    ::close(ready[1]);
    int status = 0;
    ::waitpid(first, &status, 0);
    std::string answer;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(ready[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        answer.append(buf, static_cast<std::size_t>(n));
        if (answer.find('\n') != std::string::npos) break;
    }
    ::close(ready[0]);
    if (answer.rfind("ok ", 0) == 0) {
        const std::string pid = answer.substr(3, answer.find('\n') - 3);
        const std::string run_dir =
            std::filesystem::absolute(o.run_dir).lexically_normal().string();
        std::cout << "pid " << pid << "\nsocket " << run_dir::socket(run_dir) << std::endl;
        return 0;
    }
    if (answer.rfind("error ", 0) == 0) {
        std::cerr << "smartcashd: " << answer.substr(6);
    } else {
        std::cerr << "smartcashd: the supervisor exited before it was ready; see " << o.run_dir
                  << "/logs/smartcashd.log" << std::endl;
    }
    return supervisor_exit::failed;
}

}  // namespace

int main(int argc, char** argv) {
    std::string error;
    auto options = parse(argc, argv, &error);
    if (!options) {
        std::cerr << "smartcashd: " << error << "\n" << usage_text;
        return supervisor_exit::usage;
    }
    if (options->command == "help") {
        std::cout << usage_text;
        return 0;
    }
    if (options->command == "start") return start_detached(*options);
    return supervise(*options, nullptr, nullptr);
}
