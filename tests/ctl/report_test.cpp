// `smartcashctl report`: a made-up run (journal, metrics with a resume that redoes steps, the
// tiny fixture config) read into ReportData and drawn; the SVG is checked as XML and for what a
// reader looks for: one loss point per step with the last record winning, the tier move at the
// step the new tier resumed from, one mAP point per evaluated epoch, escaped text, and errors
// that name the missing file.
#include "ctl/report.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/journal_events.hpp"
#include "common/metrics_records.hpp"
#include "common/run_dir.hpp"
#include "ctl/report_data.hpp"

namespace smartcash::report {
namespace {

namespace fs = std::filesystem;
using namespace smartcash::protocol;

constexpr std::uint64_t mib = 1024 * 1024;

std::string scratch(const std::string& name) {
    const std::string dir = std::string(SMARTCASH_TEST_TMP) + "/report/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void append(std::ofstream& out, const Json& j) { out << j.dump() << "\n"; }

StepMetrics step(std::int64_t n, double loss, const std::string& tier) {
    StepMetrics s;
    s.step = n;
    s.loss = loss;
    s.rss = (100 + n) * mib;
    s.tier = tier;
    return s;
}

EpochMetrics epoch(int n, std::int64_t at, std::optional<double> map50, const std::string& tier) {
    EpochMetrics e;
    e.epoch = n;
    e.step = at;
    e.map50 = map50;
    if (map50) e.map50_95 = *map50 / 2;
    e.tier = tier;
    return e;
}

// Tier big does steps 1-3 and runs out of memory; small resumes from the checkpoint of step 1
// and redoes steps 2 and 3 with other losses, then trains to step 6. Epoch 0 is evaluated at big,
// then again at small; epoch 1 is evaluated, epoch 2 is not. Both files end in a torn line.
void write_run(const std::string& dir) {
    std::ofstream journal(run_dir::events(dir));
    append(journal, to_json(JournalEvent{JobStart{"big", "running", 0}}));
    append(journal, to_json(JournalEvent{LaunchEvent{"big", "cpu", 1, -1}}));
    append(journal, to_json(JournalEvent{HelloEvent{"big", "cpu", 0, 6}}));
    ExitEvent oom;
    oom.tier = "big";
    oom.exit_class = "oom";
    oom.step = 3;
    append(journal, to_json(JournalEvent{oom}));
    append(journal, to_json(JournalEvent{TierMoveEvent{"big", "small", "oom"}}));
    append(journal, to_json(JournalEvent{LaunchEvent{"small", "cpu", 2, 1}}));
    append(journal, to_json(JournalEvent{HelloEvent{"small", "cpu", 1, 6}}));
    ExitEvent done;
    done.tier = "small";
    done.exit_class = "done";
    done.step = 6;
    append(journal, to_json(JournalEvent{done}));
    append(journal, to_json(JournalEvent{JobDoneEvent{"training finished at step 6"}}));
    journal << "{\"t\":\"2026-01-01T00:00:00Z\",\"event\":\"ex";

    std::ofstream metrics(run_dir::metrics(dir));
    for (const auto& s : {step(1, 2.0, "big"), step(2, 5.0, "big"), step(3, 4.0, "big")})
        append(metrics, to_json(MetricsRecord{s}));
    append(metrics, to_json(MetricsRecord{epoch(0, 3, 0.1, "big")}));
    for (const auto& s : {step(2, 1.0, "small"), step(3, 1.5, "small"), step(4, 1.0, "small"),
                          step(5, 0.8, "small"), step(6, 0.7, "small")})
        append(metrics, to_json(MetricsRecord{s}));
    append(metrics, to_json(MetricsRecord{epoch(0, 3, 0.2, "small")}));
    append(metrics, to_json(MetricsRecord{epoch(1, 5, 0.3, "small")}));
    append(metrics, to_json(MetricsRecord{epoch(2, 6, std::nullopt, "small")}));
    metrics << "{\"type\":\"step\",\"st";

    fs::copy_file(std::string(SMARTCASH_FIXTURES_DIR) + "/tiny.yaml", run_dir::config(dir));
}

std::string write_text(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
}

// Every element closed in order (xmllint, where installed, checks the rest of XML's rules:
// Report.XmllintReadsTheSvg).
bool balanced_tags(const std::string& xml) {
    std::vector<std::string> open;
    const std::regex tag(R"(<(/?)([A-Za-z][\w:-]*)[^>]*?(/?)>)");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator();
         ++it) {
        const auto& m = *it;
        if (m[3] == "/") continue;
        if (m[1] == "/") {
            if (open.empty() || open.back() != m[2]) return false;
            open.pop_back();
        } else {
            open.push_back(m[2]);
        }
    }
    return open.empty();
}

void expect_well_formed(const std::string& svg, const std::string& path) {
    write_text(path, svg);
    EXPECT_TRUE(balanced_tags(svg));
}

// The points of the polyline with this class, as (x, y).
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& cls) {
    const std::regex re("<polyline class=\"" + cls + "\"[^>]* points=\"([^\"]*)\"");
    std::smatch m;
    if (!std::regex_search(svg, m, re)) return {};
    std::vector<std::pair<double, double>> points;
    std::istringstream in(m[1].str());
    std::string pair;
    while (in >> pair) {
        const auto comma = pair.find(',');
        points.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
    }
    return points;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

TEST(ReportData, KeepsTheLastRecordOfEachStepAndEvaluatedEpoch) {
    const auto dir = scratch("data");
    write_run(dir);
    const ReportData d = read_report_data(dir);
    ASSERT_EQ(d.steps.size(), 6u);
    EXPECT_EQ(d.steps[1].step, 2);
    EXPECT_DOUBLE_EQ(d.steps[1].loss, 1.0);  // small's, not big's 5.0
    EXPECT_EQ(d.steps[1].tier, "small");
    EXPECT_EQ(d.steps_done(), 6);
    ASSERT_EQ(d.epochs.size(), 2u);
    EXPECT_DOUBLE_EQ(d.epochs[0].map50, 0.2);
    EXPECT_EQ(d.epochs[1].epoch, 1);
    ASSERT_EQ(d.tier_moves.size(), 1u);
    EXPECT_EQ(d.tier_moves[0].step, 1);
    EXPECT_EQ(d.tier_moves[0].to, "small");
    EXPECT_EQ(d.launches, 2);
    EXPECT_EQ(d.exits_by_class.at("oom"), 1);
    EXPECT_EQ(d.exits_by_class.at("done"), 1);
    EXPECT_EQ(d.tiers_used, (std::vector<std::string>{"big", "small"}));
    EXPECT_EQ(d.job_end, "done");
    EXPECT_EQ(d.total_steps, 6);
    EXPECT_EQ(d.tier_limits.at("small"), 4096 * mib);  // from the frozen config
    EXPECT_EQ(d.notes.size(), 2u);                     // the torn line of each file
}

TEST(Report, DrawsOnePointPerStepWithTheLastValue) {
    const auto dir = scratch("svg");
    write_run(dir);
    const std::string svg = render_report(read_report_data(dir));
    expect_well_formed(svg, dir + "/report.svg");
    const auto loss = polyline(svg, "loss");
    ASSERT_EQ(loss.size(), 6u);
    for (std::size_t i = 1; i < loss.size(); ++i) EXPECT_LT(loss[i - 1].first, loss[i].first);
    // Step 2 is drawn at small's loss 1.0, the same height as step 4's 1.0 (big's was 5.0).
    EXPECT_DOUBLE_EQ(loss[1].second, loss[3].second);
    EXPECT_GT(loss[1].second, loss[0].second);  // 1.0 is below step 1's 2.0: larger y
    EXPECT_EQ(polyline(svg, "rss").size(), 6u);
}

TEST(Report, MarksTheTierMoveAtTheResumedStep) {
    const auto dir = scratch("move");
    write_run(dir);
    const std::string svg = render_report(read_report_data(dir));
    // Once in the loss panel and once in the memory panel.
    EXPECT_EQ(count(svg, "<g class=\"tier-move\" data-step=\"1\" data-to=\"small\">"), 2u) << svg;
    EXPECT_EQ(count(svg, "class=\"tier-move\""), 2u);
    EXPECT_NE(svg.find(">small</text>"), std::string::npos);
    EXPECT_NE(svg.find(">(oom)</text>"), std::string::npos);
    EXPECT_NE(svg.find("class=\"memory-limit\" data-tier=\"small\""), std::string::npos);
}

TEST(Report, DrawsOneMapPointPerEvaluatedEpoch) {
    const auto dir = scratch("map");
    write_run(dir);
    const std::string svg = render_report(read_report_data(dir));
    EXPECT_EQ(count(svg, "<circle class=\"map50\""), 2u);
    EXPECT_NE(svg.find("<circle class=\"map50\" data-epoch=\"0\""), std::string::npos);
    EXPECT_NE(svg.find("<circle class=\"map50\" data-epoch=\"1\""), std::string::npos);
    EXPECT_EQ(polyline(svg, "map50").size(), 2u);
    EXPECT_EQ(polyline(svg, "map50-95").size(), 2u);
}

TEST(Report, EscapesTextFromTheRun) {
    const auto dir = scratch("run <&> \"q\"");
    write_run(dir);
    const std::string svg = render_report(read_report_data(dir));
    expect_well_formed(svg, scratch("escaped") + "/report.svg");
    EXPECT_NE(svg.find("run &lt;&amp;&gt; &quot;q&quot;"), std::string::npos);
    EXPECT_EQ(svg.find("<&>"), std::string::npos);
    EXPECT_EQ(xml_escape("a<b>&'\"\x01"), "a&lt;b&gt;&amp;&apos;&quot;");
}

// The SVG of the made-up run, and of one whose directory name needs escaping, read by libxml2's
// parser. Where xmllint is not installed the test says so as a skip (Debian: libxml2-utils);
// the other tests check only that the tags balance.
TEST(Report, XmllintReadsTheSvg) {
    if (std::system("command -v xmllint >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "xmllint is not installed (Debian: libxml2-utils); the SVG's tags were "
                        "checked for balance only";
    for (const std::string name : {"xmllint", "xmllint <&> \"q\""}) {
        const auto dir = scratch(name);
        write_run(dir);
        const std::string path = scratch("xmllint-out") + "/report.svg";
        write_text(path, render_report(read_report_data(dir)));
        EXPECT_EQ(std::system(("xmllint --noout '" + path + "'").c_str()), 0) << path;
    }
}

TEST(Report, WritesAnHtmlPageForAnHtmlName) {
    const auto dir = scratch("html");
    write_run(dir);
    write_report(dir, dir + "/night.html");
    std::ifstream in(dir + "/night.html");
    const std::string page((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(page.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
    EXPECT_EQ(page.find("<?xml"), std::string::npos);
    write_report(dir, dir + "/night.svg");
    std::ifstream svg(dir + "/night.svg");
    const std::string text((std::istreambuf_iterator<char>(svg)), {});
    EXPECT_EQ(text.rfind("<?xml", 0), 0u);
}

TEST(Report, DrawsARunWithNoStepsYet) {
    const auto dir = scratch("empty");
    write_text(run_dir::events(dir), "");
    write_text(run_dir::metrics(dir), "");
    const std::string svg = render_report(read_report_data(dir));
    expect_well_formed(svg, dir + "/report.svg");
    EXPECT_NE(svg.find("no steps recorded"), std::string::npos);
}

TEST(Report, AMissingFileIsAnErrorNamingIt) {
    const auto dir = scratch("missing");
    write_text(run_dir::metrics(dir), "");
    try {
        read_report_data(dir);
        FAIL() << "no error without events.jsonl";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(run_dir::events(dir)), std::string::npos) << e.what();
    }
    fs::remove(run_dir::metrics(dir));
    write_text(run_dir::events(dir), "");
    try {
        read_report_data(dir);
        FAIL() << "no error without metrics.jsonl";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(run_dir::metrics(dir)), std::string::npos) << e.what();
    }
}

TEST(ReportCommand, ExitsOneNamingTheMissingFile) {
    const auto dir = scratch("cli");
    const std::string err = dir + "/stderr.txt";
    const std::string cmd = std::string("'") + SMARTCASHCTL_PATH + "' --run-dir '" + dir +
                            "' report --out '" + dir + "/r.svg' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::ifstream in(err);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find(run_dir::events(dir)), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(dir + "/r.svg"));
}

TEST(ReportCommand, WithoutRunDirTakesTheOnlyRunWithAJobRecord) {
    // No supervisor is up: of runs/a (a state.json) and runs/b (none), runs/a is the job.
    const auto dir = scratch("default-dir");
    fs::create_directories(dir + "/runs/a");
    fs::create_directories(dir + "/runs/b");
    write_text(run_dir::state(dir + "/runs/a"), "{}");
    const std::string err = dir + "/stderr.txt";
    const std::string cmd =
        "cd '" + dir + "' && '" + SMARTCASHCTL_PATH + "' report --out r.svg 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::ifstream in(err);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find(run_dir::events("runs/a")), std::string::npos) << text;
}

TEST(ReportCommand, NeedsOut) {
    const int status = std::system(
        (std::string("'") + SMARTCASHCTL_PATH + "' --run-dir . report 2>/dev/null").c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace smartcash::report
