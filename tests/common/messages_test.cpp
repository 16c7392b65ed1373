// The typed messages of the protocol: every report, command, journal event and control answer
// goes to JSON under the names docs/protocol.md and docs/supervisor.md give and comes back equal.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/commands.hpp"
#include "common/control.hpp"
#include "common/journal_events.hpp"
#include "common/reports.hpp"

namespace smartcash::protocol {
namespace {

std::set<std::string> keys(const Json& j) {
    std::set<std::string> out;
    for (const auto& [key, value] : j.items()) out.insert(key);
    return out;
}

// The fields docs/protocol.md lists for each report, plus "type" and "v".
TEST(Reports, FieldsAreTheDocumentedOnes) {
    Progress progress;
    progress.step = 3;
    progress.total_steps = 10;
    progress.epoch = 0;
    progress.loss = 1.5;
    progress.images_per_s = 2;
    const std::vector<std::pair<WorkerReport, std::set<std::string>>> cases = {
        {Hello{},
         {"pid", "tier", "device", "threads", "micro_batch", "accumulation", "resumed_step",
          "total_steps", "epoch", "phase"}},
        {progress,
         {"step", "total_steps", "epoch", "phase", "loss", "loss_box", "loss_obj", "loss_cls", "lr",
          "images_per_s", "rss", "device_mem", "device_reserved", "skipped_steps", "eta_s"}},
        {CheckpointWritten{}, {"path", "step", "epoch", "sha256", "kind"}},
        {Eval{1, 2, 0.5, 0.25, 0.75, 0.5, std::map<std::string, LayerScores>{}, 0.5},
         {"epoch", "step", "map50", "map50_95", "precision", "recall", "layers", "best_map50"}},
        {EpochEnd{1, 1, 5, 2.0, 1, 2, 3},
         {"epoch", "phase", "step", "seconds", "peak_rss", "peak_device_mem",
          "peak_device_reserved"}},
        {Oom{}, {"message", "step", "checkpoint", "peak_device_mem", "peak_device_reserved"}},
        {Stopping{}, {"reason", "step", "checkpoint", "exit_code"}},
        {CheckpointRejected{}, {"message"}},
        {WorkerError{}, {"kind", "message"}},
        {Done{4, 1, 0.5, 0, "finished"},
         {"step", "epoch", "best_map50", "skipped_steps", "reason"}},
    };
    std::set<std::string> types;
    for (const auto& [report, fields] : cases) {
        const Json j = to_json(report);
        std::set<std::string> expected = fields;
        expected.insert({"type", "v"});
        EXPECT_EQ(keys(j), expected) << j.dump();
        EXPECT_EQ(j.value("type", ""), type_of(report));
        EXPECT_EQ(j.value("v", 0), version);
        types.insert(type_of(report));
    }
    EXPECT_EQ(types,
              (std::set<std::string>{"hello", "progress", "checkpoint", "eval", "epoch_end", "oom",
                                     "stopping", "checkpoint_rejected", "error", "done"}));
}

TEST(Reports, RoundTripThroughTheWire) {
    Eval eval;
    eval.epoch = 2;
    eval.step = 40;
    eval.map50 = 0.5;
    eval.layers = std::map<std::string, LayerScores>{{"layer_1", {0.25, 0.125}}};
    eval.best_map50 = 0.75;
    std::string error;
    std::string line = encode(to_json(eval));
    line.pop_back();  // the newline
    auto message = decode(line, &error);
    ASSERT_TRUE(message) << error;
    auto back = report_from_json(*message, &error);
    ASSERT_TRUE(back) << error;
    const auto* got = std::get_if<Eval>(&*back);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->epoch, 2);
    EXPECT_EQ(got->step, 40);
    EXPECT_EQ(got->map50, 0.5);
    EXPECT_FALSE(got->map50_95);
    ASSERT_TRUE(got->layers);
    EXPECT_EQ(got->layers->at("layer_1").map50, 0.25);
    EXPECT_EQ(got->layers->at("layer_1").map50_95, 0.125);
    EXPECT_EQ(got->best_map50, 0.75);

    auto hello =
        report_from_json(to_json(Hello{42, "cpu", "cpu", 2, 4, 4, 120, 480, 3, 2}), &error);
    ASSERT_TRUE(hello);
    const auto& h = std::get<Hello>(*hello);
    EXPECT_EQ(h.pid, 42);
    EXPECT_EQ(h.resumed_step, 120);
    EXPECT_EQ(h.total_steps, 480);
    EXPECT_EQ(h.phase, 2);
}

TEST(Reports, MissingOrMistypedFieldsKeepTheirDefaults) {
    std::string error;
    auto r = report_from_json(
        Json{{"type", "progress"}, {"step", "seven"}, {"loss", 1.5}, {"rss", -5}, {"extra", 1}},
        &error);
    ASSERT_TRUE(r) << error;
    const auto& p = std::get<Progress>(*r);
    EXPECT_FALSE(p.step);
    EXPECT_FALSE(p.total_steps);
    EXPECT_EQ(p.loss, 1.5);
    EXPECT_EQ(p.rss, 0u);
    EXPECT_EQ(p.eta_s, -1);
}

TEST(Reports, UnknownTypeIsAnError) {
    std::string error;
    EXPECT_FALSE(report_from_json(Json{{"type", "telemetry"}}, &error));
    EXPECT_NE(error.find("telemetry"), std::string::npos);
}

TEST(Commands, RoundTripWithTheirNames) {
    std::string error;
    const Json stop = to_json(CheckpointAndStop{"memory", std::nullopt});
    EXPECT_EQ(stop, (Json{{"cmd", "checkpoint_and_stop"}, {"reason", "memory"}, {"v", version}}));
    auto back = command_from_json(stop, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(std::get<CheckpointAndStop>(*back).reason, "memory");
    EXPECT_FALSE(std::get<CheckpointAndStop>(*back).exit_code);
    auto with_code = command_from_json(
        Json{{"cmd", "checkpoint_and_stop"}, {"reason", "x"}, {"exit_code", 70}}, &error);
    ASSERT_TRUE(with_code);
    EXPECT_EQ(std::get<CheckpointAndStop>(*with_code).exit_code, 70);
    const Json checkpoint = to_json(CheckpointCommand{"requested"});
    EXPECT_EQ(checkpoint.value("cmd", ""), "checkpoint");
    EXPECT_TRUE(std::holds_alternative<CheckpointCommand>(*command_from_json(checkpoint, &error)));
    EXPECT_FALSE(command_from_json(Json{{"cmd", "self-destruct"}}, &error));
}

// One default-made value of each alternative of the variant.
template <typename Variant, std::size_t... I>
std::vector<Variant> one_of_each(std::index_sequence<I...>) {
    return {Variant(std::in_place_index<I>)...};
}

// Every kind of journal entry reads back as itself; the names are all different.
TEST(JournalEvents, EveryKindRoundTrips) {
    std::set<std::string> names;
    auto check = [&](const JournalEvent& event) {
        const Json j = to_json(event);
        EXPECT_EQ(j.value("event", ""), name_of(event));
        std::string error;
        auto back = journal_event_from_json(j, &error);
        ASSERT_TRUE(back) << error;
        EXPECT_EQ(back->index(), event.index());
        EXPECT_EQ(to_json(*back), j);
        names.insert(name_of(event));
    };
    for (const JournalEvent& event :
         one_of_each<JournalEvent>(std::make_index_sequence<std::variant_size_v<JournalEvent>>()))
        check(event);
    EXPECT_EQ(names.size(), std::variant_size_v<JournalEvent>);
}

TEST(JournalEvents, OptionalFieldsAreLeftOutWhenUnset) {
    ExitEvent e;
    e.exit_class = "crash";
    e.signal = 11;
    const Json j = to_json(e);
    EXPECT_EQ(j.value("class", ""), "crash");
    EXPECT_EQ(j.value("signal", 0), 11);
    EXPECT_FALSE(j.contains("exit_code"));
    EXPECT_FALSE(j.contains("stop_reason"));
    EXPECT_FALSE(j.contains("error"));
}

TEST(Control, StatusShowsUnknownFiguresAsNull) {
    StatusView v;
    v.state = "running";
    v.tier = "cpu";
    const Json j = to_json(v);
    EXPECT_TRUE(j.value("ok", false));
    EXPECT_TRUE(j.at("loss").is_null());
    EXPECT_TRUE(j.at("map50").is_null());
    EXPECT_TRUE(j.at("map50_95").is_null());
    EXPECT_FALSE(j.contains("supervisor_running"));
    const StatusView back = status_from_json(j);
    EXPECT_EQ(back.state, "running");
    EXPECT_EQ(back.tier, "cpu");
    EXPECT_FALSE(back.loss);
}

TEST(Control, HistoryMetricsAndWatchLines) {
    EXPECT_EQ(to_json(ControlRequestLine{control_cmd::history, std::nullopt, 5}),
              (Json{{"cmd", "history"}, {"limit", 5}}));
    HistoryAnswer h;
    h.events = {Json{{"t", "x"}, {"event", "start"}}, Json{{"event", "done"}}};
    const HistoryAnswer h2 = history_from_json(to_json(h));
    EXPECT_TRUE(h2.ok);
    EXPECT_EQ(h2.events, h.events);
    EXPECT_EQ(metrics_from_json(to_json(MetricsAnswer{true, "a 1\n"})).text, "a 1\n");
    StatusView s;
    s.tier_order = {"big", "small"};
    s.eta_s = 12.5;
    const Json line = watch_status_line(s);
    EXPECT_EQ(line.value(watch_kind_key, ""), watch_kind::status);
    EXPECT_EQ(status_from_json(line).tier_order, s.tier_order);
    EXPECT_EQ(status_from_json(line).eta_s, 12.5);
    const Json event = watch_event_line(Json{{"event", "exit"}});
    EXPECT_EQ(event.value(watch_kind_key, ""), watch_kind::event);
    EXPECT_EQ(event[watch_event_key], (Json{{"event", "exit"}}));
}

TEST(Control, RequestsAndAnswers) {
    EXPECT_EQ(to_json(ControlRequestLine{control_cmd::tier, std::string("cpu"), std::nullopt}),
              (Json{{"cmd", "tier"}, {"tier", "cpu"}}));
    EXPECT_EQ(to_json(ControlRequestLine{control_cmd::stop, std::nullopt, std::nullopt}),
              (Json{{"cmd", "stop"}}));
    const ControlRequestLine r = control_request_from_json(Json{{"cmd", "tier"}, {"tier", 3}});
    EXPECT_EQ(r.cmd, "tier");
    EXPECT_FALSE(r.tier);  // not a string: as good as missing
    EXPECT_EQ(control_error("no"), (Json{{"ok", false}, {"error", "no"}}));
    const ControlAnswer a = control_answer_from_json(control_accepted("paused", "idle"));
    EXPECT_TRUE(a.ok);
    EXPECT_EQ(a.state, "paused");
    EXPECT_EQ(a.phase, "idle");
}

}  // namespace
}  // namespace smartcash::protocol
