#include "daemon/shell/event_text.hpp"

#include <cstdio>

#include "common/units.hpp"
#include "common/world_messages.hpp"
#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

namespace {

namespace ev = protocol;
using W = EventWeight;

std::string fixed(double v, int digits = 3) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string fixed_or_dash(const std::optional<double>& v) { return v ? fixed(*v) : "-"; }

std::string step_text(std::int64_t s) { return s < 0 ? std::string("-") : std::to_string(s); }

std::string epoch_text(int epoch) { return std::to_string(static_cast<long long>(epoch) + 1); }

EventText text(const ev::JobStart& e) {
    return {"job starting at tier " + e.tier + " (" + e.status + ", " + std::to_string(e.launches) +
                " earlier launches)",
            W::notable};
}
EventText text(const ev::LaunchEvent& e) {
    return {"launch #" + std::to_string(e.launch) + " at tier " + e.tier + " (device " + e.device +
                "), " +
                (e.resume_step < 0
                     ? std::string("from the newest checkpoint, if any")
                     : "resuming from the checkpoint at step " + step_text(e.resume_step)),
            W::routine};
}
EventText text(const ev::WorkerStartedEvent& e) {
    return {"worker pid " + std::to_string(e.pid) + " running at tier " + e.tier, W::routine};
}
EventText text(const ev::SpawnFailedEvent& e) {
    return {"the worker could not be started: " + e.message, W::alarm};
}
EventText text(const ev::HelloEvent& e) {
    return {"worker ready on " + e.device + " at tier " + e.tier + ": step " +
                step_text(e.resumed_step) + " of " + step_text(e.total_steps),
            W::routine};
}
EventText text(const ev::CheckpointEvent& e) {
    return {"checkpoint (" + e.kind + ") at step " + step_text(e.step), W::routine};
}
EventText text(const ev::EvalEvent& e) {
    std::string line = "epoch " + epoch_text(e.epoch) + " evaluated at step " + step_text(e.step) +
                       ": mAP@0.5 " + fixed_or_dash(e.map50) + ", mAP@0.5:0.95 " +
                       fixed_or_dash(e.map50_95);
    if (!e.layers_map50.empty()) {
        line += " |";
        for (const auto& [name, v] : e.layers_map50) line += " " + name + " " + fixed(v);
    }
    return {line, W::notable};
}
EventText text(const ev::EpochEndEvent& e) {
    return {"epoch " + epoch_text(e.epoch) + " done at step " + step_text(e.step) + " (tier " +
                e.tier + ", peak RSS " + format_size(e.peak_rss) + ")",
            W::routine};
}
EventText text(const ev::WorkerOomEvent& e) {
    return {"the worker ran out of memory at step " + step_text(e.step) + ": " + e.message +
                (e.checkpoint.empty() ? std::string("; no emergency checkpoint")
                                      : "; emergency checkpoint " + e.checkpoint),
            W::alarm};
}
EventText text(const ev::WorkerErrorEvent& e) {
    return {"the worker reports a " + e.kind + " error: " + e.message, W::alarm};
}
EventText text(const ev::WorkerStoppingEvent& e) {
    return {
        "the worker is stopping (" + e.reason + ") with a checkpoint at step " + step_text(e.step),
        W::routine};
}
EventText text(const ev::WorkerDoneEvent& e) {
    std::string line =
        "the worker finished training at step " + step_text(e.step) + " (" + e.reason + ")";
    if (e.best_map50) line += ", best mAP@0.5 " + fixed(*e.best_map50);
    return {line, W::notable};
}
EventText text(const ev::SoftLimitEvent& e) {
    return {"SOFT LIMIT at tier " + e.tier + ": " + e.reason +
                "; asking the worker to checkpoint and stop",
            W::alarm};
}
EventText text(const ev::SoftLimitLastTierEvent& e) {
    return {"soft limit at the last tier " + e.tier + ": " + e.reason +
                "; nowhere lower to go, only the hard limit applies",
            W::alarm};
}
EventText text(const ev::WatchdogKillEvent& e) {
    return {"HARD LIMIT at tier " + e.tier + ": worker RSS " + format_size(e.rss) +
                " reached the limit " + format_size(e.limit) + "; killing the worker (SIGKILL)",
            W::alarm};
}
EventText text(const ev::HangEvent& e) {
    return {"the worker (pid " + std::to_string(e.pid) + ") sent nothing for " +
                format_duration(e.timeout_s) + "; terminating it",
            W::alarm};
}
EventText text(const ev::StopTimeoutEvent& e) {
    return {"the worker did not stop (" + e.reason + ") in time; terminating it", W::alarm};
}
EventText text(const ev::KillEvent& e) {
    return {"killing the worker (pid " + std::to_string(e.pid) + "): " + e.reason, W::alarm};
}
EventText text(const ev::ExitEvent& e) {
    std::string line = "worker exited at tier " + e.tier + ": " + e.how + " -> " + e.exit_class +
                       " (after " + format_duration(e.seconds) + ", peak RSS " +
                       format_size(e.peak_rss) + ", last step " + step_text(e.step);
    if (e.stop_reason && !e.stop_reason->empty()) line += ", stop asked for " + *e.stop_reason;
    line += ")";
    if (e.error && !e.error->empty()) line += ": " + *e.error;
    const bool fine = e.exit_class == to_string(ExitClass::done) ||
                      e.exit_class == to_string(ExitClass::requested);
    return {line, fine ? W::notable : W::alarm};
}
EventText text(const ev::BackoffEvent& e) {
    return {"retrying at tier " + e.tier + " in " + format_duration(e.seconds) + " (" +
                std::to_string(e.failures) + " of " + std::to_string(e.retry_budget) +
                " failures without progress allowed)",
            W::routine};
}
EventText text(const ev::TierSkippedEvent& e) {
    return {"skipping tier " + e.tier + ": " + e.reason, W::notable};
}
EventText text(const ev::TierMoveEvent& e) {
    return {"TIER MOVE " + e.from + " -> " + e.to + " (" + e.reason + ")", W::alarm};
}
EventText text(const ev::PromotionEvent& e) {
    return {"PROMOTION: trying tier " + e.to + " again after " + format_duration(e.stable_s) +
                " stable at " + e.from + " (peak RSS " + format_size(e.peak_rss) + ")",
            W::alarm};
}
EventText text(const ev::PromotedEvent& e) {
    return {"promoted from " + e.from + " to " + e.to, W::notable};
}
EventText text(const ev::PromotionFailedEvent& e) {
    return {"PROMOTION FAILED at tier " + e.tier + " (" + e.reason + "): back to " + e.back_to +
                ", next try after " + format_duration(e.next_wait_s),
            W::alarm};
}
EventText text(const ev::PromotionKeptEvent& e) {
    return {"promotion to tier " + e.tier + " kept", W::notable};
}
EventText text(const ev::ControlEvent& e) {
    return {"control request: " + e.cmd + (e.tier ? " " + *e.tier : std::string()), W::notable};
}
EventText text(const ev::ShutdownEvent& e) {
    return {std::string("shutting down") + (e.force ? " now" : ""), W::notable};
}
EventText text(const ev::JobDoneEvent& e) { return {"JOB DONE: " + e.message, W::notable}; }
EventText text(const ev::JobFailedEvent& e) { return {"JOB FAILED: " + e.message, W::alarm}; }
EventText text(const ev::JobStoppedEvent& e) { return {"job stopped: " + e.message, W::notable}; }
EventText text(const ev::JobPausedEvent& e) {
    return {"job paused at tier " + e.tier.value_or(""), W::notable};
}

EventText text(const ev::WorldJoinEvent& e) {
    return {"rank " + std::to_string(e.rank) + " ready at tier " + e.tier +
                "; waiting for every rank to join",
            W::routine};
}
EventText text(const ev::WorldFormedEvent& e) {
    return {"round " + std::to_string(e.round) + " formed: every rank launches at tier " + e.tier,
            W::notable};
}
EventText text(const ev::PeerEndedEvent& e) {
    std::string line = "rank " + std::to_string(e.rank) + " ended its part of round " +
                       std::to_string(e.round) + " (" +
                       (e.exit_class.empty() ? e.kind : e.exit_class) + ")";
    if (e.kind == protocol::world::stop)
        line += ": the job stops";
    else if (e.kind == protocol::world::failed)
        line += ": the job fails";
    else
        line += ": every rank relaunches, at tier " + e.tier + " or lower";
    if (!e.detail.empty()) line += " (" + e.detail + ")";
    return {line, e.kind == protocol::world::relaunch ? W::notable : W::alarm};
}
EventText text(const ev::WorldPublishEvent& e) {
    return {"told the other ranks: " + e.kind + " (" + e.exit_class + ", tier " + e.tier + ")",
            W::routine};
}
EventText text(const ev::WorldAgentEvent& e) {
    if (e.state == "connected")
        return {"world agent connected to the store at " + e.store, W::routine};
    return {"world agent " + e.state + (e.message.empty() ? "" : ": " + e.message), W::alarm};
}

}  // namespace

EventText describe_event(const protocol::JournalEvent& entry) {
    return std::visit([](const auto& e) { return text(e); }, entry);
}

std::string describe_progress(const protocol::Progress& r, const std::string& tier) {
    std::string line = "step " + step_text(r.step.value_or(-1)) + "/" +
                       step_text(r.total_steps.value_or(-1)) + ", epoch " +
                       epoch_text(r.epoch.value_or(0));
    if (r.loss) line += ", loss " + fixed(*r.loss, 4);
    if (r.images_per_s) line += ", " + fixed(*r.images_per_s, 1) + " img/s";
    line += ", RSS " + format_size(r.rss);
    if (r.device_mem > 0) line += ", device " + format_size(r.device_mem);
    if (r.eta_s >= 0) line += ", ETA " + format_duration(r.eta_s);
    return line + " (tier " + tier + ")";
}

bool is_detail(const protocol::JournalEvent& entry) {
    // The periodic checkpoints; a stop, emergency or final one is news.
    if (const auto* c = std::get_if<ev::CheckpointEvent>(&entry))
        return c->kind == "step" || c->kind == "epoch";
    return std::holds_alternative<ev::EpochEndEvent>(entry);
}

}  // namespace smartcash::daemon
