// `smartcashctl report`: a made-up run (journal, metrics with a resume that redoes steps, the
// tiny fixture config) read into ReportData and drawn; the SVG is checked as XML and for what a
// reader looks for: one loss point per step with the last record winning, the tier move at the
// step the new tier resumed from, one mAP point per evaluated epoch, escaped text, and errors
// that name the missing file. On a run shaped like the demo (a 200 MiB tier left after a few
// steps, redone at a 6 GiB tier) the drawn coordinates are checked against the data on the
// memory panel's own scale, read from its tick marks; there and on a run crowded with moves, no
// two tier labels overlap.
#include "ctl/report.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
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

// One element of the SVG: its attributes, its text (for <text>), and the attributes of the <g>
// groups around it, outermost first.
struct Element {
    std::string name;
    std::map<std::string, std::string> attrs;
    std::string text;
    std::vector<std::map<std::string, std::string>> groups;

    double num(const std::string& attr) const { return std::stod(attrs.at(attr)); }
    std::string attr(const std::string& name_) const {
        const auto it = attrs.find(name_);
        return it == attrs.end() ? "" : it->second;
    }
    // Whether a group around it has attr="value".
    bool within(const std::string& attr_, const std::string& value) const {
        for (const auto& g : groups)
            if (auto it = g.find(attr_); it != g.end() && it->second == value) return true;
        return false;
    }
};

std::string unescape(std::string text) {
    static const std::pair<std::string_view, std::string_view> entities[] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
    for (const auto& [entity, c] : entities)
        for (auto at = text.find(entity); at != std::string::npos; at = text.find(entity, at + 1))
            text.replace(at, entity.size(), c);
    return text;
}

// Every element of the SVG, in document order (a reader for what report.cpp writes, not for any
// XML).
std::vector<Element> elements(const std::string& svg) {
    std::vector<Element> out;
    std::vector<std::map<std::string, std::string>> groups;
    const std::regex tag(R"(<(/?)([A-Za-z][\w:-]*)([^>]*?)(/?)>)");
    const std::regex attr(R"re(([\w:-]+)="([^"]*)")re");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator();
         ++it) {
        const auto& m = *it;
        if (m[1] == "/") {
            if (m[2] == "g" && !groups.empty()) groups.pop_back();
            continue;
        }
        Element e;
        e.name = m[2];
        const std::string attrs = m[3];
        for (auto a = std::sregex_iterator(attrs.begin(), attrs.end(), attr);
             a != std::sregex_iterator(); ++a)
            e.attrs[(*a)[1]] = unescape((*a)[2]);
        e.groups = groups;
        if (e.name == "text") {
            const auto start = static_cast<std::size_t>(m.position(0) + m.length(0));
            // Its characters, those of a <tspan> inside it included.
            e.text = unescape(std::regex_replace(
                svg.substr(start, svg.find("</text>", start) - start), std::regex("<[^>]*>"), ""));
        }
        if (e.name == "g" && m[4] != "/") groups.push_back(e.attrs);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<Element> panel(const std::vector<Element>& all, const std::string& name) {
    std::vector<Element> out;
    for (const auto& e : all)
        if (e.within("data-panel", name)) out.push_back(e);
    return out;
}

// The panel's mapping of data onto the picture along one axis, as its tick marks draw it:
// position = a + b * value, fitted to every tick (`cls` y-tick or x-tick; `coord` y1 or x1).
struct Scale {
    double a = 0, b = 0;
    double at(double value) const { return a + b * value; }
};

Scale scale(const std::vector<Element>& panel_, const std::string& cls, const std::string& coord) {
    std::vector<std::pair<double, double>> ticks;  // value, position
    for (const auto& e : panel_)
        if (e.name == "line" && e.attr("class") == cls)
            ticks.emplace_back(std::stod(e.attr("data-value")), e.num(coord));
    EXPECT_GE(ticks.size(), 2u) << "the panel has too few " << cls << " marks";
    if (ticks.size() < 2) return {};
    double mv = 0, mp = 0;
    for (const auto& [v, p] : ticks) mv += v, mp += p;
    mv /= ticks.size();
    mp /= ticks.size();
    double svp = 0, svv = 0;
    for (const auto& [v, p] : ticks) svp += (v - mv) * (p - mp), svv += (v - mv) * (v - mv);
    Scale s;
    s.b = svp / svv;
    s.a = mp - s.b * mv;
    for (const auto& [v, p] : ticks) EXPECT_NEAR(s.at(v), p, 0.2) << cls << " " << v;
    return s;
}

// Where a <text> is drawn, estimated generously (0.6 em a character, as wide as sans-serif's
// widest common letters average), from its anchor and font size.
struct Box {
    double x0, y0, x1, y1;
};

std::size_t characters(const std::string& utf8) {
    std::size_t n = 0;
    for (unsigned char c : utf8) n += (c & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

Box text_box(const Element& t) {
    const double size = t.attrs.count("font-size") ? t.num("font-size") : 12;
    const double w = static_cast<double>(characters(t.text)) * 0.6 * size;
    const double x = t.num("x"), y = t.num("y");
    const std::string anchor = t.attr("text-anchor");
    const double x0 = anchor == "end" ? x - w : anchor == "middle" ? x - w / 2 : x;
    return {x0, y - 0.8 * size, x0 + w, y + 0.25 * size};
}

bool overlap(const Box& a, const Box& b) {
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

// The labels drawn inside a panel about tiers: where the job started, each move (tier and
// reason) and each tier's memory limit.
std::vector<Element> tier_labels(const std::vector<Element>& panel_) {
    std::vector<Element> out;
    for (const auto& e : panel_)
        if (e.name == "text" &&
            (e.attr("class") == "tier-start" || e.within("class", "tier-move") ||
             e.within("class", "memory-limit")))
            out.push_back(e);
    return out;
}

// No two of them overlap, and each lies inside the panel's frame.
void expect_labels_apart(const std::vector<Element>& panel_, const std::string& what) {
    const auto labels = tier_labels(panel_);
    for (std::size_t i = 0; i < labels.size(); ++i)
        for (std::size_t j = i + 1; j < labels.size(); ++j)
            EXPECT_FALSE(overlap(text_box(labels[i]), text_box(labels[j])))
                << what << ": \"" << labels[i].text << "\" at (" << labels[i].attr("x") << ", "
                << labels[i].attr("y") << ") overlaps \"" << labels[j].text << "\" at ("
                << labels[j].attr("x") << ", " << labels[j].attr("y") << ")";
}

// A run as a list of launches: each trains `tier` from step `from` to step `to` (RSS `rss` MiB at
// every step), ends with `exit_class`, and moves to the next launch's tier with `reason` when
// the tier changes. `tiers` is the config's tiers: section.
struct Launch {
    std::string tier;
    std::int64_t from, to;
    std::uint64_t rss;
    std::string exit_class, reason;
};

void write_launches(const std::string& dir, const std::string& tiers,
                    const std::vector<Launch>& launches, std::int64_t total) {
    std::ofstream journal(run_dir::events(dir));
    std::ofstream metrics(run_dir::metrics(dir));
    append(journal, to_json(JournalEvent{JobStart{launches.front().tier, "running", 0}}));
    for (std::size_t i = 0; i < launches.size(); ++i) {
        const Launch& l = launches[i];
        append(journal, to_json(JournalEvent{LaunchEvent{l.tier, "cpu", static_cast<int>(i + 1),
                                                         l.from > 0 ? l.from : -1}}));
        append(journal, to_json(JournalEvent{HelloEvent{l.tier, "cpu", l.from, total}}));
        for (std::int64_t n = l.from + 1; n <= l.to; ++n) {
            StepMetrics s = step(n, 1.0 / static_cast<double>(n), l.tier);
            s.rss = l.rss * mib;
            append(metrics, to_json(MetricsRecord{s}));
        }
        ExitEvent exit;
        exit.tier = l.tier;
        exit.exit_class = l.exit_class;
        exit.step = l.to;
        append(journal, to_json(JournalEvent{exit}));
        if (i + 1 < launches.size() && launches[i + 1].tier != l.tier)
            append(journal,
                   to_json(JournalEvent{TierMoveEvent{l.tier, launches[i + 1].tier, l.reason}}));
    }
    append(journal, to_json(JournalEvent{JobDoneEvent{"training finished"}}));
    std::ifstream in(std::string(SMARTCASH_FIXTURES_DIR) + "/tiny.yaml");
    std::string config((std::istreambuf_iterator<char>(in)), {});
    const auto from = config.find("tiers:\n"), to = config.find("supervisor:\n");
    std::ofstream(run_dir::config(dir)) << config.substr(0, from) << "tiers:\n"
                                        << tiers << config.substr(to);
}

// The demo's shape: the first tier (limit 200 MiB) is killed by the watchdog after 8 steps with
// no checkpoint, and the second (6 GiB) starts again from step 0 and trains to step 40.
const std::string demo_tiers =
    "  - {name: accelerated, device: cpu, micro_batch: 4, threads: 1, memory_limit: 200MiB}\n"
    "  - {name: cpu, device: cpu, micro_batch: 2, threads: 1, memory_limit: 6GiB}\n";

void write_demo_like_run(const std::string& dir) {
    write_launches(
        dir, demo_tiers,
        {{"accelerated", 0, 8, 190, "oom-killed", "oom-killed"}, {"cpu", 0, 40, 300, "done", ""}},
        40);
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
    // Each tier from the step it resumed at to the last it reported, even where small redid
    // big's steps.
    ASSERT_EQ(d.tier_stretches.size(), 2u);
    EXPECT_EQ(d.tier_stretches[0].tier, "big");
    EXPECT_EQ(d.tier_stretches[0].from, 0);
    EXPECT_EQ(d.tier_stretches[0].to, 3);
    EXPECT_EQ(d.tier_stretches[1].tier, "small");
    EXPECT_EQ(d.tier_stretches[1].from, 1);
    EXPECT_EQ(d.tier_stretches[1].to, 6);
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
    EXPECT_NE(svg.find(">small<tspan"), std::string::npos) << svg;
    EXPECT_NE(svg.find(">(oom)</tspan></text>"), std::string::npos) << svg;
    EXPECT_NE(svg.find("class=\"memory-limit\" data-tier=\"small\""), std::string::npos);
}

// Each tier's memory limit is drawn over the steps it was in force, at its own height on the
// panel's scale, even when the steps of the first tier were trained again at the next one; the
// RSS and the tier move sit where the data puts them on the same scale.
TEST(Report, TheMemoryPanelDrawsEachTiersLimitOverItsOwnSteps) {
    const auto dir = scratch("limits");
    write_demo_like_run(dir);
    const std::string svg = render_report(read_report_data(dir));
    const auto memory = panel(elements(svg), "memory");
    ASSERT_FALSE(memory.empty()) << svg;
    const Scale x = scale(memory, "x-tick", "x1");
    const Scale y = scale(memory, "y-tick", "y1");
    // The y axis is in GiB here (its title says which).
    bool gib = false;
    for (const auto& e : memory) gib = gib || e.text == "RSS (GiB)";
    ASSERT_TRUE(gib) << "the axis is not in GiB";
    const double unit = 1024.0 * mib;

    struct Expected {
        std::string tier;
        std::int64_t from, to;
        double bytes;
    };
    for (const Expected& want :
         {Expected{"accelerated", 0, 8, 200.0 * mib}, Expected{"cpu", 0, 40, 6.0 * unit}}) {
        std::vector<Element> lines;
        for (const auto& e : memory)
            if (e.name == "line" && e.within("data-tier", want.tier)) lines.push_back(e);
        ASSERT_EQ(lines.size(), 1u) << "the limit of tier " << want.tier << " is not drawn once";
        const Element& l = lines[0];
        EXPECT_NEAR(l.num("x1"), x.at(want.from), 0.5) << want.tier << " starts elsewhere";
        EXPECT_NEAR(l.num("x2"), x.at(want.to), 0.5) << want.tier << " ends elsewhere";
        EXPECT_NEAR(l.num("y1"), y.at(want.bytes / unit), 0.5) << want.tier << "'s limit height";
        EXPECT_NEAR(l.num("y2"), y.at(want.bytes / unit), 0.5) << want.tier << "'s limit height";
    }

    // The RSS of each step as recorded last (cpu's 300 MiB), and the move at step 0.
    const auto rss = polyline(svg, "rss");
    ASSERT_EQ(rss.size(), 40u);
    for (std::size_t i = 0; i < rss.size(); ++i) {
        EXPECT_NEAR(rss[i].first, x.at(static_cast<double>(i + 1)), 0.5) << "step " << i + 1;
        EXPECT_NEAR(rss[i].second, y.at(300.0 * mib / unit), 0.5) << "step " << i + 1;
    }
    std::vector<Element> moves;
    for (const auto& e : memory)
        if (e.name == "line" && e.within("class", "tier-move")) moves.push_back(e);
    ASSERT_EQ(moves.size(), 1u);
    EXPECT_NEAR(moves[0].num("x1"), x.at(0), 0.5);

    expect_labels_apart(memory, "memory panel");
    expect_labels_apart(panel(elements(svg), "loss"), "loss panel");
}

// Tiers that come and go close together (failed promotions, moves at the same step, long tier
// names): every label still has a place of its own.
TEST(Report, TierLabelsNeverOverlap) {
    const auto dir = scratch("crowded");
    const std::string tiers =
        "  - {name: accelerated-large, device: cpu, micro_batch: 4, threads: 1, memory_limit: "
        "3GiB}\n"
        "  - {name: cpu-with-a-long-name, device: cpu, micro_batch: 2, threads: 1, memory_limit: "
        "2GiB}\n"
        "  - {name: minimal, device: cpu, micro_batch: 1, threads: 1, memory_limit: 1GiB}\n";
    write_launches(dir, tiers,
                   {{"accelerated-large", 0, 0, 900, "oom-killed", "oom-killed"},
                    {"cpu-with-a-long-name", 0, 0, 800, "requested", "soft-limit"},
                    {"minimal", 0, 3, 700, "requested", "promotion"},
                    {"cpu-with-a-long-name", 2, 4, 800, "requested", "promotion-failed"},
                    {"minimal", 4, 6, 700, "requested", "promotion"},
                    {"cpu-with-a-long-name", 6, 7, 800, "requested", "promotion-failed"},
                    {"minimal", 6, 9, 700, "requested", "promotion"},
                    {"cpu-with-a-long-name", 8, 9, 800, "requested", "promotion-failed"},
                    {"minimal", 8, 60, 700, "done", ""}},
                   60);
    const std::string svg = render_report(read_report_data(dir));
    const auto all = elements(svg);
    for (const std::string name : {"loss", "memory"}) {
        const auto p = panel(all, name);
        ASSERT_FALSE(tier_labels(p).empty()) << name;
        expect_labels_apart(p, name + " panel");
    }
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
