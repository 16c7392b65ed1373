// Memory ballast for the integration tests: a child of the worker that, once the worker has
// written a checkpoint at or past a given step (a new one, on a resumed launch), touches a given
// amount of memory and then waits for the worker to end. The supervisor sums RSS over the worker's
// process tree, so this makes the tree's memory grow in the middle of training, the way a real
// run's does when a larger batch or a cache arrives, while the real worker trains and checkpoints
// as usual.
//
// The worker is held (SIGSTOP) from just before the memory is touched until the supervisor has
// journalled what it saw (a new soft-limit entry in RUN_DIR/events.jsonl; at a hard limit the
// supervisor kills the whole tree, this process included). So the supervisor sees the memory
// before the worker can train to its end, however fast the worker and however slow the poll:
// the test depends on events, not on the machine's speed. After 60 s without such an entry the
// worker is let go anyway, so that a supervisor that never reacts fails the test instead of
// hanging it.
//
// usage: smartcash_integration_ballast RUN_DIR AFTER_STEP MIB
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The highest N of RUN_DIR/checkpoints/step-N.json, or -1.
long newest_manifest_step(const std::string& run_dir) {
    long best = -1;
    DIR* dir = ::opendir((run_dir + "/checkpoints").c_str());
    if (!dir) return best;
    while (const dirent* e = ::readdir(dir)) {
        long step = 0;
        char tail[8] = {};
        if (std::sscanf(e->d_name, "step-%ld.%7s", &step, tail) == 2 &&
            std::strcmp(tail, "json") == 0 && step > best)
            best = step;
    }
    ::closedir(dir);
    return best;
}

std::string read_file(const std::string& path) {
    std::string text;
    if (std::FILE* f = std::fopen(path.c_str(), "r")) {
        char buf[65536];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
    }
    return text;
}

// How many soft-limit entries the run's journal holds now.
std::size_t soft_limit_entries(const std::string& run_dir) {
    const std::string text = read_file(run_dir + "/events.jsonl");
    const std::string needle = "\"event\":\"soft-limit\"";
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s RUN_DIR AFTER_STEP MIB\n", argv[0]);
        return 64;
    }
    const pid_t parent = ::getppid();
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    // Elsewhere (macOS) the getppid() checks below end it once the worker is gone.
    if (::getppid() != parent) return 0;
    // Keep none of the worker's descriptors (its report pipe above all) open.
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    const std::string run_dir = argv[1];
    const long after_step = std::atol(argv[2]);
    const std::size_t bytes = static_cast<std::size_t>(std::atol(argv[3])) << 20;
    // A checkpoint of this launch's own (after the worker has said hello and trained), at or
    // past AFTER_STEP: a resumed launch finds older ones already there.
    const long newest_at_start = newest_manifest_step(run_dir);
    while (true) {
        const long newest = newest_manifest_step(run_dir);
        if (newest >= after_step && newest > newest_at_start) break;
        if (::getppid() != parent) return 0;
        ::usleep(20 * 1000);
    }
    const std::size_t entries_before = soft_limit_entries(run_dir);
    ::kill(parent, SIGSTOP);
    std::fprintf(stderr, "ballast: checkpoint at step >= %ld seen; worker held; touching %zu MiB\n",
                 after_step, bytes >> 20);
    std::vector<char> block(bytes);
    for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
    for (int waited_ms = 0; waited_ms < 60000 && ::getppid() == parent; waited_ms += 20) {
        if (soft_limit_entries(run_dir) > entries_before) break;
        ::usleep(20 * 1000);
    }
    ::kill(parent, SIGCONT);
    while (::getppid() == parent) ::usleep(100 * 1000);
    return 0;
}
