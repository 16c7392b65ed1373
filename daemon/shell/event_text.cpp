#include "daemon/shell/event_text.hpp"

#include <cstdio>

#include "common/units.hpp"

namespace smartcash::daemon {

namespace {

using Json = protocol::Json;

std::string str(const Json& j, const char* key, const std::string& fallback = "") {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

double num(const Json& j, const char* key, double fallback = 0) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

bool has_num(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number();
}

std::string size(const Json& j, const char* key) {
    const double v = num(j, key, 0);
    return format_size(v > 0 ? static_cast<std::uint64_t>(v) : 0);
}

std::string fixed(double v, int digits = 3) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string step_text(const Json& j, const char* key) {
    const double s = num(j, key, -1);
    return s < 0 ? std::string("-") : std::to_string(static_cast<long long>(s));
}

}  // namespace

EventText describe_event(const Json& e) {
    const std::string event = str(e, "event");
    const std::string tier = str(e, "tier");
    using W = EventWeight;
    if (event == "start")
        return {"job starting at tier " + tier + " (" + str(e, "status") + ", " +
                    str(e, "launches") + " earlier launches)",
                W::notable};
    if (event == "launch") {
        const double resume = num(e, "resume_step", -1);
        return {"launch #" + str(e, "launch") + " at tier " + tier + " (device " +
                    str(e, "device") + "), " +
                    (resume < 0
                         ? std::string("from the newest checkpoint, if any")
                         : "resuming from the checkpoint at step " + step_text(e, "resume_step")),
                W::routine};
    }
    if (event == "worker-started")
        return {"worker pid " + str(e, "pid") + " running at tier " + tier, W::routine};
    if (event == "spawn-failed")
        return {"the worker could not be started: " + str(e, "message"), W::alarm};
    if (event == "hello")
        return {"worker ready on " + str(e, "device") + " at tier " + tier + ": step " +
                    step_text(e, "resumed_step") + " of " + step_text(e, "total_steps"),
                W::routine};
    if (event == "checkpoint")
        return {"checkpoint (" + str(e, "kind") + ") at step " + step_text(e, "step"), W::routine};
    if (event == "eval") {
        std::string text =
            "epoch " + std::to_string(static_cast<long long>(num(e, "epoch", 0)) + 1) +
            " evaluated at step " + step_text(e, "step") + ": mAP@0.5 " +
            (has_num(e, "map50") ? fixed(num(e, "map50")) : std::string("-")) + ", mAP@0.5:0.95 " +
            (has_num(e, "map50_95") ? fixed(num(e, "map50_95")) : std::string("-"));
        auto it = e.find("layers_map50");
        if (it != e.end() && it->is_object() && !it->empty()) {
            text += " |";
            for (const auto& [name, v] : it->items())
                if (v.is_number()) text += " " + name + " " + fixed(v.get<double>());
        }
        return {text, W::notable};
    }
    if (event == "epoch_end")
        return {"epoch " + std::to_string(static_cast<long long>(num(e, "epoch", 0)) + 1) +
                    " done at step " + step_text(e, "step") + " (tier " + tier + ", peak RSS " +
                    size(e, "peak_rss") + ")",
                W::routine};
    if (event == "worker-oom")
        return {
            "the worker ran out of memory at step " + step_text(e, "step") + ": " +
                str(e, "message") +
                (str(e, "checkpoint").empty() ? std::string("; no emergency checkpoint")
                                              : "; emergency checkpoint " + str(e, "checkpoint")),
            W::alarm};
    if (event == "worker-error")
        return {"the worker reports a " + str(e, "kind") + " error: " + str(e, "message"),
                W::alarm};
    if (event == "worker-stopping")
        return {"the worker is stopping (" + str(e, "reason") + ") with a checkpoint at step " +
                    step_text(e, "step"),
                W::routine};
    if (event == "worker-done") {
        std::string text = "the worker finished training at step " + step_text(e, "step") + " (" +
                           str(e, "reason") + ")";
        if (has_num(e, "best_map50")) text += ", best mAP@0.5 " + fixed(num(e, "best_map50"));
        return {text, W::notable};
    }
    if (event == "soft-limit")
        return {"SOFT LIMIT at tier " + tier + ": " + str(e, "reason") +
                    "; asking the worker to checkpoint and stop",
                W::alarm};
    if (event == "soft-limit-last-tier")
        return {"soft limit at the last tier " + tier + ": " + str(e, "reason") +
                    "; nowhere lower to go, only the hard limit applies",
                W::alarm};
    if (event == "watchdog-kill")
        return {"HARD LIMIT at tier " + tier + ": worker RSS " + size(e, "rss") +
                    " reached the limit " + size(e, "limit") + "; killing the worker (SIGKILL)",
                W::alarm};
    if (event == "hang")
        return {"the worker (pid " + str(e, "pid") + ") sent nothing for " +
                    format_duration(num(e, "timeout_s")) + "; terminating it",
                W::alarm};
    if (event == "stop-timeout")
        return {"the worker did not stop (" + str(e, "reason") + ") in time; terminating it",
                W::alarm};
    if (event == "kill")
        return {"killing the worker (pid " + str(e, "pid") + "): " + str(e, "reason"), W::alarm};
    if (event == "exit") {
        const std::string cls = str(e, "class");
        std::string text = "worker exited at tier " + tier + ": " + str(e, "how") + " -> " + cls +
                           " (after " + format_duration(num(e, "seconds")) + ", peak RSS " +
                           size(e, "peak_rss") + ", last step " + step_text(e, "step");
        if (!str(e, "stop_reason").empty()) text += ", stop asked for " + str(e, "stop_reason");
        text += ")";
        if (!str(e, "error").empty()) text += ": " + str(e, "error");
        return {text, cls == "done" || cls == "requested" ? W::notable : W::alarm};
    }
    if (event == "backoff")
        return {"retrying at tier " + tier + " in " + format_duration(num(e, "seconds")) + " (" +
                    str(e, "failures") + " of " + str(e, "retry_budget") +
                    " failures without progress allowed)",
                W::routine};
    if (event == "tier-skipped")
        return {"skipping tier " + tier + ": " + str(e, "reason"), W::notable};
    if (event == "tier-move")
        return {
            "TIER MOVE " + str(e, "from") + " -> " + str(e, "to") + " (" + str(e, "reason") + ")",
            W::alarm};
    if (event == "promotion")
        return {"PROMOTION: trying tier " + str(e, "to") + " again after " +
                    format_duration(num(e, "stable_s")) + " stable at " + str(e, "from") +
                    " (peak RSS " + size(e, "peak_rss") + ")",
                W::alarm};
    if (event == "promoted")
        return {"promoted from " + str(e, "from") + " to " + str(e, "to"), W::notable};
    if (event == "promotion-failed")
        return {"PROMOTION FAILED at tier " + tier + " (" + str(e, "reason") + "): back to " +
                    str(e, "back_to") + ", next try after " +
                    format_duration(num(e, "next_wait_s")),
                W::alarm};
    if (event == "promotion-kept") return {"promotion to tier " + tier + " kept", W::notable};
    if (event == "control")
        return {"control request: " + str(e, "cmd") + (tier.empty() ? std::string() : " " + tier),
                W::notable};
    if (event == "shutdown")
        return {std::string("shutting down") +
                    (num(e, "force") != 0 || str(e, "force") == "true" ? " now" : ""),
                W::notable};
    if (event == "done") return {"JOB DONE: " + str(e, "message"), W::notable};
    if (event == "failed") return {"JOB FAILED: " + str(e, "message"), W::alarm};
    if (event == "stopped") return {"job stopped: " + str(e, "message"), W::notable};
    if (event == "paused") return {"job paused at tier " + tier, W::notable};
    return {e.dump(), W::routine};
}

std::string describe_progress(const Json& r, const std::string& tier) {
    std::string text = "step " + step_text(r, "step") + "/" + step_text(r, "total_steps") +
                       ", epoch " + std::to_string(static_cast<long long>(num(r, "epoch", 0)) + 1);
    if (has_num(r, "loss")) text += ", loss " + fixed(num(r, "loss"), 4);
    if (has_num(r, "images_per_s")) text += ", " + fixed(num(r, "images_per_s"), 1) + " img/s";
    text += ", RSS " + size(r, "rss");
    if (num(r, "device_mem", 0) > 0) text += ", device " + size(r, "device_mem");
    if (num(r, "eta_s", -1) >= 0) text += ", ETA " + format_duration(num(r, "eta_s"));
    return text + " (tier " + tier + ")";
}

}  // namespace smartcash::daemon
