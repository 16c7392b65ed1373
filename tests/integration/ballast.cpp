// Memory ballast for the integration tests: a child of the worker that, once the worker has
// written a checkpoint at or past a given step, touches a given amount of memory and then waits
// for the worker to end. The supervisor sums RSS over the worker's process tree, so this makes
// the tree's memory grow in the middle of training, the way a real run's does when a larger
// batch or a cache arrives, while the real worker trains and checkpoints as usual.
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
    while (newest_manifest_step(run_dir) < after_step) {
        if (::getppid() != parent) return 0;
        ::usleep(20 * 1000);
    }
    std::fprintf(stderr, "ballast: checkpoint at step >= %ld seen; touching %zu MiB\n", after_step,
                 bytes >> 20);
    std::vector<char> block(bytes);
    for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
    while (::getppid() == parent) ::usleep(100 * 1000);
    return 0;
}
