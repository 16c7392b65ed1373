// A stand-in for smartcash-worker in the supervisor's tests: speaks the report protocol and
// misbehaves on request. Environment:
//   FAKE_MODE            done (default) | exit | alloc | hang | segv | ignore-stop
//   FAKE_STEPS           steps to run before finishing / exiting / hanging (default 20)
//   FAKE_STEP_MS         time per step (default 20)
//   FAKE_EXIT_CODE       code for FAKE_MODE=exit (default 1)
//   FAKE_ERROR_KIND      with FAKE_MODE=exit: send an error report of this kind first
//   FAKE_CHECKPOINT_EVERY  steps between checkpoints (default 5; 0: none)
//   FAKE_EPOCH_STEPS     steps per epoch (default 10): epoch_end reports
//   FAKE_ALLOC_MB        with FAKE_MODE=alloc: megabytes touched per step (default 16)
//   FAKE_ALLOC_MAX_MB    with FAKE_MODE=alloc: no more growth once this much is held (0: no cap)
//   FAKE_IGNORE_TERM     1: ignore SIGTERM (a worker that only SIGKILL ends)
//   FAKE_HELPER          1: start a helper process (in the worker's process group, holding the
//                        report pipe) that sleeps for a minute; its pid goes to RUN_DIR/helper.pid
// Its checkpoint is RUN_DIR/checkpoints/fake-step.txt (the step number); it resumes from it.
// `devices --json` answers like the real worker: cuda and mps usable when FAKE_DEVICES names them
// (in the supervisor's own environment), else not, with FAKE_DEVICES_WHY as the reason.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

volatile sig_atomic_t g_term = 0;
int g_report = -1;
int g_command = -1;

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

std::string env_str(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

void report(const std::string& json_body) {
    if (g_report < 0) return;
    const std::string line = "{\"v\":1," + json_body + "}\n";
    const ssize_t n = ::write(g_report, line.data(), line.size());
    (void)n;
}

// Returns the "cmd" value of a complete line read from the command fd, or "".
std::string poll_command(std::string* reason, int* exit_code) {
    static std::string buffer;
    if (g_command < 0) return "";
    char buf[1024];
    for (;;) {
        const ssize_t n = ::read(g_command, buf, sizeof buf);
        if (n <= 0) break;
        buffer.append(buf, static_cast<std::size_t>(n));
    }
    const auto nl = buffer.find('\n');
    if (nl == std::string::npos) return "";
    const std::string line = buffer.substr(0, nl);
    buffer.erase(0, nl + 1);
    auto field = [&](const std::string& key) {
        const auto at = line.find("\"" + key + "\":");
        if (at == std::string::npos) return std::string();
        auto start = at + key.size() + 3;
        if (line[start] == '"') {
            const auto end = line.find('"', start + 1);
            return line.substr(start + 1, end - start - 1);
        }
        const auto end = line.find_first_of(",}", start);
        return line.substr(start, end - start);
    };
    *reason = field("reason");
    const std::string code = field("exit_code");
    *exit_code = code.empty() ? 76 : std::atoi(code.c_str());
    return field("cmd");
}

// Descriptors open besides stdio and the two channel fds: /proc/self/fd on Linux, /dev/fd on
// macOS (fdesc, mounted on /dev there), each listing the caller's own.
int extra_open_fds() {
    int count = 0;
#ifdef __linux__
    DIR* d = ::opendir("/proc/self/fd");
#else
    DIR* d = ::opendir("/dev/fd");
#endif
    if (!d) return -1;
    const int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd <= 2 || fd == own || fd == g_report || fd == g_command) continue;
        ++count;
    }
    ::closedir(d);
    return count;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "devices") == 0) {
        const std::string have = "," + env_str("FAKE_DEVICES", "") + ",";
        const std::string why = env_str("FAKE_DEVICES_WHY", "no such device in the fake");
        auto one = [&](const char* name) {
            const bool usable = have.find(std::string(",") + name + ",") != std::string::npos;
            return std::string("\"") + name + "\":{\"usable\":" + (usable ? "true" : "false") +
                   (usable ? std::string() : ",\"why\":\"" + why + "\"") + "}";
        };
        std::printf("{%s,%s,\"torch_version\":\"0.0.0\"}\n", one("cuda").c_str(),
                    one("mps").c_str());
        return 0;
    }
    std::string run_dir = ".", tier = "?";
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--run-dir") == 0) run_dir = argv[i + 1];
        if (std::strcmp(argv[i], "--tier") == 0) tier = argv[i + 1];
    }
    g_report = env_int("SMARTCASH_REPORT_FD", -1);
    g_command = env_int("SMARTCASH_COMMAND_FD", -1);
    if (g_command >= 0) ::fcntl(g_command, F_SETFL, ::fcntl(g_command, F_GETFL) | O_NONBLOCK);
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_term = 1; };
    ::sigaction(SIGTERM, &sa, nullptr);
    if (env_int("FAKE_IGNORE_TERM", 0) == 1) ::signal(SIGTERM, SIG_IGN);

    const std::string mode = env_str("FAKE_MODE", "done");
    const int steps = env_int("FAKE_STEPS", 20);
    const int step_ms = env_int("FAKE_STEP_MS", 20);
    const int every = env_int("FAKE_CHECKPOINT_EVERY", 5);
    const int epoch_steps = env_int("FAKE_EPOCH_STEPS", 10);
    const std::string checkpoint = run_dir + "/checkpoints/fake-step.txt";

    int step = 0;
    {
        std::ifstream in(checkpoint);
        in >> step;
    }
    const int start_step = step;
    if (env_int("FAKE_HELPER", 0) == 1) {
        const pid_t helper = ::fork();
        if (helper == 0) {
            ::sleep(60);
            ::_exit(0);
        }
        // Written whole or not at all: the test reads it as soon as it appears.
        std::ofstream(run_dir + "/helper.pid.tmp") << helper << "\n";
        std::rename((run_dir + "/helper.pid.tmp").c_str(), (run_dir + "/helper.pid").c_str());
    }
    std::printf("fake worker pid=%d tier=%s mode=%s resumed_step=%d extra_fds=%d\n",
                static_cast<int>(::getpid()), tier.c_str(), mode.c_str(), step, extra_open_fds());
    // Like the real worker: RUN_DIR/worker.lock is held for the whole run.
    const int lock_fd =
        ::open((run_dir + "/worker.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        std::printf("another worker holds %s/worker.lock\n", run_dir.c_str());
        return 78;
    }
    const std::string pid_text = std::to_string(::getpid()) + "\n";
    (void)!::ftruncate(lock_fd, 0);
    (void)!::pwrite(lock_fd, pid_text.data(), pid_text.size(), 0);
    std::fflush(stdout);
    report("\"type\":\"hello\",\"pid\":" + std::to_string(::getpid()) + ",\"tier\":\"" + tier +
           "\",\"device\":\"cpu\",\"resumed_step\":" + std::to_string(step) +
           ",\"total_steps\":" + std::to_string(steps) + ",\"epoch\":0,\"phase\":1");

    auto save = [&](const char* kind) {
        {
            std::ofstream out(checkpoint + ".tmp");
            out << step << "\n";
        }
        std::rename((checkpoint + ".tmp").c_str(), checkpoint.c_str());
        report("\"type\":\"checkpoint\",\"path\":\"" + checkpoint + "\",\"step\":" +
               std::to_string(step) + ",\"epoch\":0,\"sha256\":\"\",\"kind\":\"" + kind + "\"");
    };
    auto stop_now = [&](const std::string& reason, int code) {
        save("stop");
        report("\"type\":\"stopping\",\"reason\":\"" + reason +
               "\",\"step\":" + std::to_string(step) + ",\"checkpoint\":\"" + checkpoint +
               "\",\"exit_code\":" + std::to_string(code));
        std::printf("stopping at step %d (%s)\n", step, reason.c_str());
        std::fflush(stdout);
        std::exit(code);
    };

    std::vector<std::vector<char>> hoard;
    for (;;) {
        std::string reason;
        int code = 76;
        const std::string cmd = poll_command(&reason, &code);
        if (cmd == "checkpoint_and_stop" && mode != "ignore-stop") stop_now(reason, code);
        if (cmd == "checkpoint") save("requested");
        if (g_term && mode != "ignore-stop") stop_now("sigterm", 76);

        if (mode == "hang" && step - start_step >= steps) {
            std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
            continue;  // silent: no reports at all
        }
        if (step >= steps && mode == "done") {
            report("\"type\":\"done\",\"step\":" + std::to_string(step) +
                   ",\"epoch\":1,\"best_map50\":0.5,"
                   "\"reason\":\"finished\"");
            return 0;
        }
        if (mode == "exit" && step - start_step >= steps) {
            const std::string kind = env_str("FAKE_ERROR_KIND", "");
            if (!kind.empty())
                report("\"type\":\"error\",\"kind\":\"" + kind + "\",\"message\":\"fake " + kind +
                       " problem\"");
            return env_int("FAKE_EXIT_CODE", 1);
        }
        if (mode == "segv" && step - start_step >= steps) {
            ::signal(SIGSEGV, SIG_DFL);
            ::raise(SIGSEGV);
        }
        const std::size_t held_mb =
            hoard.size() * static_cast<std::size_t>(env_int("FAKE_ALLOC_MB", 16));
        const int max_mb = env_int("FAKE_ALLOC_MAX_MB", 0);
        if (mode == "alloc" && (max_mb <= 0 || held_mb < static_cast<std::size_t>(max_mb))) {
            std::vector<char> block(static_cast<std::size_t>(env_int("FAKE_ALLOC_MB", 16)) << 20);
            for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
            hoard.push_back(std::move(block));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
        ++step;
        report("\"type\":\"progress\",\"step\":" + std::to_string(step) +
               ",\"total_steps\":" + std::to_string(steps) +
               ",\"epoch\":" + std::to_string(step / (epoch_steps > 0 ? epoch_steps : 1)) +
               ",\"loss\":" + std::to_string(1.0 / (1 + step)) + ",\"rss\":0,\"device_mem\":0");
        if (every > 0 && step % every == 0) save("step");
        if (epoch_steps > 0 && step % epoch_steps == 0)
            report("\"type\":\"epoch_end\",\"epoch\":" + std::to_string(step / epoch_steps) +
                   ",\"phase\":1,\"step\":" + std::to_string(step) +
                   ",\"seconds\":1,\"peak_rss\":0,\"peak_device_mem\":0");
    }
}
