// What the integration tests share: a scratch run per test, smartcashd started as a real process
// on a fixture config, its journal read back, and the worker's own checkpoint-info.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.hpp"

namespace smartcash::integration {

using protocol::Json;
using namespace std::chrono_literals;

/// How long a whole tiny job may take under a loaded CI machine.
constexpr auto job_timeout = 200s;

/// A step field of a journal event (-99 when absent).
inline std::int64_t step_of(const Json& e, const char* key = "step") {
    return e.value(key, std::int64_t{-99});
}

/// A fixture config by file name (tests/fixtures/NAME).
std::string fixture(const std::string& name);

/// One scratch directory per test, emptied at the start: RUN is its run directory.
class Scratch {
  public:
    explicit Scratch(const std::string& name);
    const std::string& path() const { return m_path; }
    std::string run() const { return m_path + "/run"; }
    std::string file(const std::string& name) const { return m_path + "/" + name; }
    /// A copy of every checkpoint the journal names, made as soon as it appears (the worker prunes
    /// old ones): kept/<file name>.
    std::string kept(const std::string& checkpoint_path) const;

    /// Writes an executable stand-in for the worker that starts the ballast (ballast.cpp) when the
    /// tier's env has SMARTCASH_TEST_BALLAST=STEP:MIB and then execs the real worker, so the
    /// ballast is a child of the worker itself. Returns its path.
    std::string ballast_wrapper() const;

  private:
    std::string m_path;
};

/// smartcashd run as a child of the test, stdout/stderr in the scratch directory.
class Daemon {
  public:
    /// An empty `worker` runs smartcashd without --worker (and without SMARTCASH_WORKER), as the
    /// README does: the worker next to smartcashd.
    /// `extra` goes after the usual arguments (--nnodes ... for a rank of a job of several);
    /// `launcher` before smartcashd (`ip netns exec NS`: a program that execs the rest, so the
    /// pid is smartcashd's).
    Daemon(const Scratch& scratch, const std::string& config, const std::string& worker,
           const std::string& tag = "", const std::vector<std::string>& extra = {},
           const std::vector<std::string>& launcher = {});
    ~Daemon();
    pid_t pid() const { return m_pid; }
    /// Waits for the exit (polling the journal meanwhile, see Scratch::kept); returns the exit
    /// code, 128 + the signal number for a death by signal (139: SIGSEGV), or -1 on a timeout
    /// (then kills it).
    int wait(std::chrono::milliseconds timeout,
             const std::function<void(const Json&)>& on_event = nullptr);
    /// Polls the journal until `pred` holds for an event or the daemon exits; true when it held.
    bool wait_for_event(const std::function<bool(const Json&)>& pred,
                        std::chrono::milliseconds timeout);
    void kill_hard();
    std::string stderr_text() const;

  private:
    void poll_journal(const std::function<void(const Json&)>& on_event);
    const Scratch& m_scratch;
    std::string m_err;
    pid_t m_pid = -1;
    std::size_t m_seen = 0;
    std::optional<int> m_status;
};

std::vector<Json> events(const Scratch& s);
std::vector<Json> events_named(const Scratch& s, const std::string& name);
/// The journal, one line per event, for failure messages.
std::string dump(const std::vector<Json>& events);
Json state_json(const Scratch& s);
std::string slurp(const std::string& path);

/// `smartcash-worker checkpoint-info FILE --json`.
Json checkpoint_info(const std::string& file);
/// The newest step-N.pt in the run's checkpoints directory.
std::string newest_checkpoint(const Scratch& s);
/// The highest step metrics.jsonl records at a tier (-1: none).
std::int64_t last_step_at_tier(const Scratch& s, const std::string& tier);

/// Runs a program to its end; returns its exit code (-1 when it did not exit), its stdout in *out
/// (and its stderr too with `with_stderr`).
int run_program(const std::vector<std::string>& argv, std::string* out, bool with_stderr = false);

/// Gone, or a zombie nobody has reaped yet.
bool process_gone(int pid);
/// Pids of processes whose command line mentions `text` (the test's own excluded).
std::vector<int> processes_mentioning(const std::string& text);

}  // namespace smartcash::integration
