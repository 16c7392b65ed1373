#include "daemon/shell/supervisor.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "common/atomic_file.hpp"
#include "common/file_lock.hpp"
#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "daemon/shell/control_server.hpp"
#include "daemon/shell/devices.hpp"
#include "daemon/shell/event_text.hpp"
#include "daemon/shell/memory_probe.hpp"
#include "daemon/rundir/run_files.hpp"
#include "daemon/shell/self_path.hpp"
#include "daemon/rundir/state_file.hpp"
#include "daemon/shell/worker_process.hpp"

namespace smartcash::daemon {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::string resolve_worker_path(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("SMARTCASH_WORKER"); env && *env) return env;
    if (auto self = self_executable_path())
        return (std::filesystem::path(*self).parent_path() / "smartcash-worker").string();
    return "smartcash-worker";
}

struct Supervisor::Impl {
    Impl(Config c, SupervisorOptions o)
        : config(std::move(c)),
          options(std::move(o)),
          journal(options.run_dir),
          signals(io, SIGINT, SIGTERM, SIGQUIT),
          poll_timer(io),
          persist_timer(io),
          control(io, [this](const Json& request) { return on_control(request); }),
          probe(make_memory_probe()),
          started(Clock::now()) {
        context.config = &config;
        for (auto& t : timers) t = std::make_unique<TimerSlot>(io);
    }

    struct TimerSlot {
        explicit TimerSlot(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        std::uint64_t generation = 0;
    };

    Config config;
    SupervisorOptions options;
    Journal journal;
    asio::io_context io;
    asio::signal_set signals;
    asio::steady_timer poll_timer;
    asio::steady_timer persist_timer;  // retries state.json and journal writes that failed
    ControlServer control;
    std::unique_ptr<MemoryProbe> probe;
    Clock::time_point started;
    DecideContext context;
    SupervisorState state;
    std::array<std::unique_ptr<TimerSlot>, 4> timers;
    std::shared_ptr<WorkerProcess> worker;
    std::uint64_t launch_generation = 0;
    std::optional<std::uint64_t> oom_kills_at_launch;
    // Persistence that failed (full disk, I/O error): the state in memory stays authoritative,
    // journal lines wait here in order, and both are retried until they are written.
    std::deque<std::string> unwritten_journal;
    std::size_t dropped_journal_lines = 0;
    bool state_unsaved = false;
    std::string persist_error;  // the last write error ("" while everything is on disk)
    double persist_failing_since = 0;
    bool persist_retry_armed = false;
    int shutdown_signals = 0;
    std::optional<int> exit_code;
    bool stderr_is_terminal = ::isatty(STDERR_FILENO) == 1;
    double last_progress_line = -1e9;
    std::string follow_path;  // the worker log being copied to stderr
    std::size_t follow_offset = 0;
    std::string follow_pending;  // a partial last line

    double now() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

    void log(const std::string& line, EventWeight weight = EventWeight::routine) {
        if (!options.log_to_stderr) return;
        const std::string clock = iso_time_now().substr(11, 8);  // HH:MM:SS, UTC like the journal
        std::string text = line;
        if (weight == EventWeight::alarm) {
            text = "==> " + line;
            if (stderr_is_terminal) text = "\033[1;33m" + text + "\033[0m";
        } else if (weight == EventWeight::notable && stderr_is_terminal) {
            text = "\033[1m" + text + "\033[0m";
        }
        std::cerr.clear();  // a write that failed once (full disk, EFBIG) must not mute the rest
        std::cerr << "smartcashd " << clock << "  " << text << std::endl;
    }

    // ---- the worker's log, copied to stderr when following ----

    void follow_log() {
        if (!options.follow_worker_log || follow_path.empty()) return;
        std::ifstream in(follow_path, std::ios::binary);
        if (!in) return;
        in.seekg(static_cast<std::streamoff>(follow_offset));
        std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        follow_offset += chunk.size();
        follow_pending += chunk;
        std::size_t start = 0;
        for (std::size_t nl; (nl = follow_pending.find('\n', start)) != std::string::npos;
             start = nl + 1) {
            std::string line = follow_pending.substr(start, nl - start);
            // A terminal progress bar redraws with carriage returns; keep its last state only.
            if (auto cr = line.find_last_of('\r'); cr != std::string::npos)
                line = line.substr(cr + 1);
            if (!line.empty()) std::cerr << "    worker | " << line << "\n";
        }
        follow_pending.erase(0, start);
        std::cerr.flush();
    }

    void end_follow() {
        follow_log();
        if (!follow_pending.empty()) std::cerr << "    worker | " << follow_pending << std::endl;
        follow_pending.clear();
        follow_path.clear();
        follow_offset = 0;
    }

    void on_report(const Json& message) {
        if (!options.follow_worker_log && options.progress_interval > 0 &&
            message.value("type", "") == "progress" &&
            now() - last_progress_line >= options.progress_interval) {
            last_progress_line = now();
            const std::size_t t = static_cast<std::size_t>(state.tier);
            log(describe_progress(
                message, t < config.tiers.size() ? config.tiers[t].name : std::string("?")));
        }
        dispatch(Report{message});
    }

    void print_summary(const Finish& a) {
        if (!options.log_to_stderr) return;
        const std::size_t t = static_cast<std::size_t>(state.tier);
        char buf[32];
        std::cerr << "\nsmartcashd: job " << to_string(a.status) << "\n";
        if (!a.message.empty()) std::cerr << "  " << a.message << "\n";
        if (t < config.tiers.size()) std::cerr << "  tier:        " << config.tiers[t].name << "\n";
        if (state.step >= 0)
            std::cerr << "  step:        " << state.step
                      << (state.total_steps > 0 ? " of " + std::to_string(state.total_steps)
                                                : std::string())
                      << "\n";
        std::cerr << "  launches:    " << state.launches << "\n";
        if (state.map50) {
            std::snprintf(buf, sizeof buf, "%.3f", *state.map50);
            std::cerr << "  mAP@0.5:     " << buf
                      << (a.status == JobStatus::done ? " (best)" : " (last eval)") << "\n";
        }
        for (const auto& [name, v] : state.layer_map50) {
            std::snprintf(buf, sizeof buf, "%.3f", v);
            std::cerr << "  " << name << " mAP@0.5: " << buf << " (last eval)\n";
        }
        for (std::size_t i = 0; i < config.tiers.size(); ++i) {
            auto it = state.tier_records.find(config.tiers[i].name);
            if (it == state.tier_records.end() || it->second.launches == 0) continue;
            std::cerr << "  tier " << config.tiers[i].name << ": " << it->second.launches
                      << " launch" << (it->second.launches == 1 ? "" : "es") << ", peak RSS "
                      << format_size(it->second.peak_rss) << ", last "
                      << (it->second.last_outcome.empty() ? "-" : it->second.last_outcome) << "\n";
        }
        if (!state.last_checkpoint.empty())
            std::cerr << "  checkpoint:  " << state.last_checkpoint << "\n";
        std::cerr << "  journal:     " << run_dir::events(options.run_dir) << "\n";
        std::cerr << "  worker logs: " << run_dir::logs(options.run_dir) << "/worker-N.log"
                  << std::endl;
    }

    Decision dispatch(EventBody body) {
        Decision d = decide(state, Event{now(), std::move(body)}, context);
        state = d.state;
        for (const Action& a : d.actions) std::visit([this](const auto& x) { perform(x); }, a);
        return d;
    }

    // ---- actions ----

    void perform(const Launch& a) {
        const TierConfig& tier = config.tiers[static_cast<std::size_t>(a.tier)];
        LaunchSpec spec;
        spec.executable = options.worker_path;
        spec.args = {"train",     "--config",      run_dir::config(options.run_dir),
                     "--run-dir", options.run_dir, "--tier",
                     tier.name};
        spec.env = tier.env;
        spec.log_path =
            run_dir::logs(options.run_dir) + "/worker-" + std::to_string(state.launches) + ".log";
        oom_kills_at_launch = probe->oom_kill_count();
        const std::uint64_t generation = ++launch_generation;
        auto process = std::make_shared<WorkerProcess>(io);
        auto error = process->start(
            spec,
            [this, generation](const Json& message) {
                if (generation == launch_generation) on_report(message);
            },
            [this, generation](const std::string& why) {
                if (generation == launch_generation) log("worker sent a bad report line: " + why);
            },
            [this, generation](const ProcessEnd& end) {
                if (generation == launch_generation) on_worker_exit(end);
            });
        // Results come back as events from the loop, never from inside this action list.
        if (error) {
            worker.reset();
            asio::post(io, [this, e = *error] {
                dispatch(SpawnFailed{e.message, e.cannot_execute});
            });
            return;
        }
        worker = process;
        end_follow();
        follow_path = spec.log_path;
        last_progress_line = now();  // the first progress line after an interval of training
        log("worker log: " + spec.log_path);
        asio::post(io, [this, pid = process->pid()] { dispatch(WorkerStarted{pid}); });
    }

    void perform(const SendCommand& a) {
        if (worker)
            worker->send(Json{{"v", protocol::version}, {"cmd", a.cmd}, {"reason", a.reason}});
    }

    void perform(const SignalWorker& a) {
        if (worker) worker->signal(a.signal);
    }

    void perform(const StartTimer& a) {
        TimerSlot& slot = *timers[static_cast<std::size_t>(a.kind)];
        const std::uint64_t generation = ++slot.generation;
        slot.timer.expires_after(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds)));
        const TimerKind kind = a.kind;
        slot.timer.async_wait([this, &slot, generation, kind](const boost::system::error_code& ec) {
            // A timer re-armed or cancelled after it fired must not deliver a stale event.
            if (ec || generation != slot.generation) return;
            dispatch(TimerExpired{kind});
        });
    }

    void perform(const CancelTimer& a) {
        TimerSlot& slot = *timers[static_cast<std::size_t>(a.kind)];
        ++slot.generation;
        slot.timer.cancel();
    }

    void perform(const JournalEntry& a) {
        const std::string line = Journal::line(a.entry);
        const EventText text = describe_event(a.entry);
        if (!text.text.empty()) log(text.text, text.weight);
        constexpr std::size_t max_unwritten = 100000;
        if (unwritten_journal.size() >= max_unwritten) {
            unwritten_journal.pop_front();
            ++dropped_journal_lines;
        }
        unwritten_journal.push_back(line);
        persist();
    }

    void perform(const SaveState&) {
        state_unsaved = true;
        persist();
    }

    // Writes what waits (journal lines first, in order, then state.json). On failure the rest
    // waits for the retry timer; the state in memory is what the supervisor acts on meanwhile.
    void persist() {
        std::string error;
        try {
            while (!unwritten_journal.empty()) {
                journal.write(unwritten_journal.front());
                unwritten_journal.pop_front();
            }
        } catch (const std::exception& e) {
            error = std::string("cannot write the journal: ") + e.what();
        }
        if (error.empty() && state_unsaved) {
            try {
                save_state_file(options.run_dir, state, config);
                state_unsaved = false;
            } catch (const std::exception& e) {
                error = std::string("cannot write state.json: ") + e.what();
            }
        }
        if (error.empty()) {
            if (!persist_error.empty()) {
                log("the run directory is writable again; state.json and the journal are up to "
                    "date" +
                        (dropped_journal_lines ? " (" + std::to_string(dropped_journal_lines) +
                                                     " journal lines were dropped)"
                                               : std::string()),
                    EventWeight::notable);
                persist_error.clear();
                dropped_journal_lines = 0;
            }
            return;
        }
        if (persist_error != error)
            log(error + "; keeping the state in memory and retrying", EventWeight::alarm);
        if (persist_error.empty()) persist_failing_since = now();
        persist_error = error;
        if (persist_retry_armed) return;
        persist_retry_armed = true;
        persist_timer.expires_after(std::chrono::seconds(1));
        persist_timer.async_wait([this](const boost::system::error_code& ec) {
            persist_retry_armed = false;
            if (!ec) persist();
        });
    }

    void perform(const Finish& a) {
        persist();
        if (!persist_error.empty())
            log("exiting with the run directory out of date: " + persist_error, EventWeight::alarm);
        end_follow();
        print_summary(a);
        switch (a.status) {
            case JobStatus::done:
                exit_code = supervisor_exit::done;
                break;
            case JobStatus::failed:
                exit_code = supervisor_exit::failed;
                break;
            default:
                exit_code = supervisor_exit::stopped;
                break;
        }
        // Leave the loop once the current handler returns; no worker is alive at this point.
        asio::post(io, [this] { shut_down_loop(); });
    }

    // ---- events from the outside ----

    void on_worker_exit(const ProcessEnd& end) {
        WorkerExited e;
        e.exit_code = end.exit_code;
        e.signal = end.signal;
        if (oom_kills_at_launch) {
            auto after = probe->oom_kill_count();
            e.cgroup_oom_kill = after && *after > *oom_kills_at_launch;
        }
        worker.reset();
        end_follow();
        dispatch(e);
    }

    void poll_memory() {
        follow_log();
        // Once reaped, the worker's pid may already name another process: never read it.
        if (worker && !worker->reaped()) {
            MemoryReading r = probe->read(worker->pid());
            dispatch(MemorySample{r.rss, r.available, r.pressure});
        }
        poll_timer.expires_after(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                std::max(0.01, config.supervisor.poll_interval_seconds))));
        poll_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) poll_memory();
        });
    }

    void wait_signals() {
        signals.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            ++shutdown_signals;
            log(std::string("received ") +
                (sig == SIGINT    ? "SIGINT"
                 : sig == SIGTERM ? "SIGTERM"
                                  : "SIGQUIT") +
                (shutdown_signals > 1 ? "; stopping the worker now"
                                      : "; asking the worker to checkpoint and stop"));
            dispatch(Shutdown{shutdown_signals > 1});
            wait_signals();
        });
    }

    Json status_json() const {
        const bool tier_ok = state.tier >= 0 && state.tier < static_cast<int>(config.tiers.size());
        const TierConfig* tier =
            tier_ok ? &config.tiers[static_cast<std::size_t>(state.tier)] : nullptr;
        auto opt = [](const auto& v) { return v ? Json(*v) : Json(); };
        return Json{{"ok", true},
                    {"state", to_string(state.status)},
                    {"phase", to_string(state.phase)},
                    {"tier", tier ? tier->name : std::string()},
                    {"tier_device", tier ? to_string(tier->device) : ""},
                    {"device", state.device},
                    {"memory_limit", tier ? tier->memory_limit : 0},
                    {"step", state.step},
                    {"total_steps", state.total_steps},
                    {"epoch", state.epoch},
                    {"loss", opt(state.loss)},
                    {"map50", opt(state.map50)},
                    {"map50_95", opt(state.map50_95)},
                    {"layers_map50", state.layer_map50},
                    {"rss", state.rss},
                    {"device_mem", state.device_mem},
                    {"pid", state.pid},
                    {"launches", state.launches},
                    {"failures_without_progress", state.failures_without_progress},
                    {"last_checkpoint", state.last_checkpoint},
                    {"last_checkpoint_step", state.last_checkpoint_step},
                    {"message", state.message},
                    {"persistence", persistence_json()},
                    {"run_dir", options.run_dir},
                    {"supervisor_pid", static_cast<int>(::getpid())}};
    }

    // Whether state.json and the journal are on disk; status shows it so that a full disk is
    // seen before a restart would resume from an old state.
    Json persistence_json() const {
        if (persist_error.empty()) return Json{{"ok", true}};
        return Json{{"ok", false},
                    {"error", persist_error},
                    {"failing_for_s", now() - persist_failing_since},
                    {"unwritten_journal_lines", unwritten_journal.size()},
                    {"state_unsaved", state_unsaved}};
    }

    Json on_control(const Json& request) {
        const std::string cmd = request.value("cmd", "");
        ControlRequest r;
        if (cmd == "status") return status_json();
        if (cmd == "stop")
            r.command = ControlCommand::stop;
        else if (cmd == "pause")
            r.command = ControlCommand::pause;
        else if (cmd == "resume")
            r.command = ControlCommand::resume;
        else if (cmd == "checkpoint")
            r.command = ControlCommand::checkpoint;
        else if (cmd == "tier") {
            r.command = ControlCommand::tier;
            auto it = request.find("tier");
            if (it == request.end() || !it->is_string())
                return Json{{"ok", false}, {"error", "tier needs a string field \"tier\""}};
            r.tier = it->get<std::string>();
        } else {
            return Json{{"ok", false}, {"error", "unknown command \"" + cmd + "\""}};
        }
        Decision d = dispatch(r);
        if (!d.ok) return Json{{"ok", false}, {"error", d.error}};
        return Json{
            {"ok", true}, {"state", to_string(state.status)}, {"phase", to_string(state.phase)}};
    }

    void shut_down_loop() {
        control.close();
        signals.cancel();
        poll_timer.cancel();
        persist_timer.cancel();
        for (auto& t : timers) t->timer.cancel();
        io.stop();
    }

    // A worker of a supervisor that was killed keeps training or stopping (Linux sends it SIGTERM,
    // and it checkpoints); let it finish before a new one starts on the same checkpoints. The
    // worker holds RUN_DIR/worker.lock for its life, so this needs no process table.
    void wait_for_leftover_worker() {
        const std::string path = run_dir::worker_lock(options.run_dir);
        int pid = 0;
        if (!FileLock::held(path, &pid)) return;
        const std::string who = pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string();
        log("a worker of an earlier supervisor" + who + " still holds " + path +
            "; waiting for it to stop");
        auto wait_free = [&](double seconds) {
            const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(seconds));
            int holder = 0;
            while (Clock::now() < deadline && FileLock::held(path, &holder)) ::usleep(50 * 1000);
            return !FileLock::held(path, &holder);
        };
        if (wait_free(config.supervisor.stop_grace_seconds)) return;
        // The lock is held, so its recorded holder (or the group it leads) is alive: a pid that
        // cannot have been reused.
        if (pid > 0) {
            log("killing the earlier worker" + who, EventWeight::alarm);
            if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
        }
        if (!wait_free(5.0))
            log("the earlier worker's lock is still held; the new worker will refuse to start",
                EventWeight::alarm);
    }

    // Only the worker knows which devices its LibTorch can use; ask it once, and only when a
    // tier names an accelerator (cpu and auto tiers need no answer).
    void ask_for_devices() {
        const bool needed = std::any_of(
            config.tiers.begin(), config.tiers.end(),
            [](const auto& t) { return t.device == Device::cuda || t.device == Device::mps; });
        if (!needed) return;
        context.devices = ask_worker_for_devices(options.worker_path, std::chrono::seconds(60));
        auto line = [](const char* name, bool usable, const std::string& why) {
            return std::string(name) + (usable ? " usable" : " not usable (" + why + ")");
        };
        log("devices: " + line("cuda", context.devices.cuda, context.devices.cuda_why) + ", " +
            line("mps", context.devices.mps, context.devices.mps_why));
    }

    int run() {
        try {
            if (load_state_file(options.run_dir, config, &state))
                log(std::string("continuing the job from state.json (") + to_string(state.status) +
                    ", tier " +
                    (state.tier < static_cast<int>(config.tiers.size())
                         ? config.tiers[static_cast<std::size_t>(state.tier)].name
                         : std::string("?")) +
                    ")");
        } catch (const std::exception& e) {
            if (options.on_startup_error) options.on_startup_error(e.what());
            log(e.what());
            return supervisor_exit::failed;
        }
        wait_for_leftover_worker();
        ask_for_devices();
        if (auto error = control.listen(run_dir::socket(options.run_dir))) {
            if (options.on_startup_error) options.on_startup_error(*error);
            log(*error);
            return supervisor_exit::failed;
        }
        ::signal(SIGPIPE, SIG_IGN);  // a vanished client or worker is an error code, not a death
        ::signal(SIGXFSZ, SIG_IGN);  // a file size limit is a write error (EFBIG), not a death
        wait_signals();
        poll_memory();
        log("supervising " + options.run_dir + " with worker " + options.worker_path + ", socket " +
            run_dir::socket(options.run_dir));
        if (options.on_ready) options.on_ready();
        asio::post(io, [this] { dispatch(StartJob{}); });
        io.run();
        return exit_code.value_or(supervisor_exit::stopped);
    }
};

Supervisor::Supervisor(Config config, SupervisorOptions options)
    : m_impl(std::make_unique<Impl>(std::move(config), std::move(options))) {}

Supervisor::~Supervisor() = default;

int Supervisor::run() { return m_impl->run(); }

}  // namespace smartcash::daemon
