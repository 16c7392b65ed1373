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
#include <iostream>

#include "common/atomic_file.hpp"
#include "common/control.hpp"
#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "daemon/rundir/run_files.hpp"
#include "daemon/rundir/state_file.hpp"
#include "daemon/shell/console.hpp"
#include "daemon/shell/control_requests.hpp"
#include "daemon/shell/control_server.hpp"
#include "daemon/shell/event_text.hpp"
#include "daemon/shell/memory_probe.hpp"
#include "daemon/shell/metrics_http.hpp"
#include "daemon/shell/run_dir_writer.hpp"
#include "daemon/shell/self_path.hpp"
#include "daemon/shell/startup_checks.hpp"
#include "daemon/shell/status.hpp"
#include "daemon/shell/worker_process.hpp"
#include "daemon/shell/world_link.hpp"

namespace smartcash::daemon {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Supervisor::Impl {
    Impl(Config c, SupervisorOptions o)
        : config(std::move(c)),
          options(std::move(o)),
          console(options.log_to_stderr, options.follow_worker_log, options.verbose),
          writer(
              io, options.run_dir, [this] { save_state_file(options.run_dir, state, config); },
              [this](const std::string& line, EventWeight weight) { log(line, weight); },
              [this] { return now(); }),
          signals(io, SIGINT, SIGTERM, SIGQUIT),
          poll_timer(io),
          watch_timer(io),
          control(io, [this](const Json& request) { return on_control(request); }),
          metrics_http(io, [this] { return metrics_exposition(status(), counters); }),
          probe(make_memory_probe()),
          started(Clock::now()) {
        context.config = &config;
        context.world_size = options.world.world_size;
        context.rank = options.world.rank;
        for (auto& t : timers) t = std::make_unique<TimerSlot>(io);
    }

    struct TimerSlot {
        explicit TimerSlot(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        std::uint64_t generation = 0;
    };

    Config config;
    SupervisorOptions options;
    Console console;
    asio::io_context io;
    RunDirWriter writer;  // the journal and state.json, retried while the disk refuses them
    asio::signal_set signals;
    asio::steady_timer poll_timer;
    asio::steady_timer watch_timer;  // the next status line for watchers
    ControlServer control;
    MetricsHttp metrics_http;  // supervisor.metrics_listen (off when empty)
    std::unique_ptr<MemoryProbe> probe;
    Clock::time_point started;
    DecideContext context;
    SupervisorState state;
    std::array<std::unique_ptr<TimerSlot>, 4> timers;
    std::shared_ptr<WorkerProcess> worker;
    std::unique_ptr<WorldLink> world_link;                 // several ranks only
    std::optional<protocol::world::WorldView> world_view;  // the agent's latest
    std::uint64_t launch_generation = 0;
    std::optional<std::uint64_t> oom_kills_at_launch;
    int shutdown_signals = 0;
    std::optional<int> exit_code;
    double last_progress_line = -1e9;
    LiveProgress progress;     // the worker's latest report and its step rate
    MetricsCounters counters;  // journal entries counted for `metrics`
    double last_watch_status = -1e9;
    bool watch_status_armed = false;

    double now() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

    void log(const std::string& line, EventWeight weight = EventWeight::routine) const {
        console.log(line, weight);
    }

    void on_report(const Json& message) {
        std::string error;
        auto report = protocol::report_from_json(message, &error);
        if (!report) {
            log("ignoring a report: " + error);
            return;
        }
        const auto* progress = std::get_if<protocol::Progress>(&*report);
        if (progress) this->progress.observe(now(), *progress);
        if (progress && !options.follow_worker_log && options.progress_interval > 0 &&
            now() - last_progress_line >= options.progress_interval) {
            last_progress_line = now();
            const std::size_t t = static_cast<std::size_t>(state.tier);
            log(describe_progress(
                *progress, t < config.tiers.size() ? config.tiers[t].name : std::string("?")));
        }
        dispatch(Report{std::move(*report)});
        if (progress) {
            publish_status();
            if (console.live()) console.show(status());
        }
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
        if (world_link) {
            for (auto& [name, value] : world_link->worker_env()) spec.env[name] = value;
        }
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
        progress.restart();
        console.follow(spec.log_path);
        last_progress_line = now();  // the first progress line after an interval of training
        log("worker log: " + spec.log_path);
        asio::post(io, [this, pid = process->pid()] { dispatch(WorkerStarted{pid}); });
    }

    void perform(const JoinWorld& a) {
        if (world_link) world_link->join(a.tier);
    }

    void perform(const PublishEnd& a) {
        if (world_link)
            world_link->publish(
                protocol::world::Publish{a.kind, a.exit_class, a.tier, a.step, a.detail});
    }

    void perform(const SendCommand& a) {
        if (worker) worker->send(protocol::to_json(a.command));
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
        const std::string line = Journal::line(protocol::to_json(a.entry));
        counters.observe(a.entry);
        if (control.watchers() > 0) {
            control.publish(protocol::encode(protocol::watch_event_line(Json::parse(line))));
            publish_status();
        }
        const EventText text = describe_event(a.entry);
        if (!text.text.empty() && (options.verbose || !is_detail(a.entry)))
            log(text.text, text.weight);
        writer.journal(line);
    }

    void perform(const SaveState&) { writer.save_state(); }

    void perform(const Finish& a) {
        writer.flush();
        if (!writer.error().empty())
            log("exiting with the run directory out of date: " + writer.error(),
                EventWeight::alarm);
        console.end_follow();
        console.summary(a, state, config, options.run_dir);
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
        if (world_link)
            world_link->finish([this] { shut_down_loop(); });
        else
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
        // One more reading of the system (never of the reaped pid): a pressure spike shorter
        // than one poll that got the worker killed is still at its level now.
        e.pressure_after = probe->read(0).pressure;
        worker.reset();
        console.end_follow();
        dispatch(e);
    }

    void poll_memory() {
        console.poll_followed();
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

    protocol::StatusView status() const {
        protocol::StatusView v = status_view(state, config, options.run_dir, progress);
        v.persistence = writer.view();
        v.supervisor_pid = static_cast<int>(::getpid());
        if (world_link) v.world = world_status(options.world, world_view);
        return v;
    }

    // Watchers get the status at most every 0.5 s while it changes: now when the last one is
    // that old, else once the 0.5 s are up.
    void publish_status() {
        if (control.watchers() == 0 || watch_status_armed) return;
        const double wait = last_watch_status + 0.5 - now();
        if (wait <= 0) {
            last_watch_status = now();
            control.publish(protocol::encode(protocol::watch_status_line(status())));
            return;
        }
        watch_status_armed = true;
        watch_timer.expires_after(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait)));
        watch_timer.async_wait([this](const boost::system::error_code& ec) {
            watch_status_armed = false;
            if (!ec) publish_status();
        });
    }

    Json on_control(const Json& message) {
        ControlContext c;
        c.status = [this] { return status(); };
        c.dispatch = [this](const ControlRequest& r) { return dispatch(r); };
        c.counters = &counters;
        c.run_dir = options.run_dir;
        return answer_control(message, c);
    }

    std::optional<std::string> serve_metrics() {
        const std::string& listen = config.supervisor.metrics_listen;
        if (listen.empty()) return std::nullopt;
        std::string error;
        auto address = parse_listen_address(listen, &error);
        if (!address) return "supervisor.metrics_listen " + error;
        if (auto failed = metrics_http.listen(*address)) return failed;
        log("metrics at http://" + address->host + ":" + std::to_string(metrics_http.port()) +
            "/metrics");
        return std::nullopt;
    }

    // Several ranks: the agent's news become events; this rank's figures go to the others.
    std::optional<std::string> link_world() {
        if (!options.world.several()) return std::nullopt;
        namespace world = protocol::world;
        WorldLink::Handlers h;
        h.connected = [this](const world::Connected& m) {
            perform(JournalEntry{protocol::WorldAgentEvent{"connected", m.store, ""}});
        };
        h.formed = [this](const world::Formed& m) {
            dispatch(WorldFormed{m.round, m.tier, m.tiers});
        };
        h.peer_ended = [this](const world::PeerEnded& m) {
            dispatch(PeerEnded{m.round, m.rank, m.kind, m.exit_class, m.tier, m.step, m.detail});
        };
        h.view = [this](const world::WorldView& m) { world_view = m; };
        h.lost = [this](const std::string& why) { dispatch(WorldAgentLost{why}); };
        h.figures = [this] {
            const protocol::StatusView v = status();  // the worker's latest figures
            return world::Figures{to_string(state.phase), v.tier, v.step, v.rss.value_or(0),
                                  v.device.value_or(v.tier_device.value_or(""))};
        };
        world_link = std::make_unique<WorldLink>(
            io, options.world, options.worker_path,
            run_dir::logs(options.run_dir) + "/world-agent.log", std::move(h));
        if (auto error = world_link->start()) return error;
        log("rank " + std::to_string(options.world.rank) + " of " +
            std::to_string(options.world.world_size) + ", store at " + options.world.master());
        return std::nullopt;
    }

    void shut_down_loop() {
        if (world_link) world_link->close();
        control.close();
        metrics_http.close();
        signals.cancel();
        poll_timer.cancel();
        writer.close();
        watch_timer.cancel();
        for (auto& t : timers) t->timer.cancel();
        io.stop();
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
        auto log_line = [this](const std::string& line, EventWeight weight) { log(line, weight); };
        wait_for_leftover_worker(options.run_dir, config.supervisor.stop_grace_seconds, log_line);
        context.devices = devices_for(config, options.worker_path, log_line);
        if (auto error = control.listen(run_dir::socket(options.run_dir))) {
            if (options.on_startup_error) options.on_startup_error(*error);
            log(*error);
            return supervisor_exit::failed;
        }
        if (auto error = serve_metrics(); error || (error = link_world())) {
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
