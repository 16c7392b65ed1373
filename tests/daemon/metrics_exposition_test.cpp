// metrics_exposition() against the rules of Prometheus' text exposition format (version 0.0.4),
// checked by hand here, and by Prometheus' own `promtool check metrics` (a test of its own, shown
// as skipped where promtool is not installed).
#include "daemon/rules/metrics_exposition.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace smartcash::daemon {
namespace {

// Checks the text; returns the problems found ("" when none) and fills samples (name{labels}
// -> value) and the TYPE of each family.
std::string check_exposition(const std::string& text, std::map<std::string, double>* samples,
                             std::map<std::string, std::string>* types) {
    std::ostringstream problems;
    if (text.empty() || text.back() != '\n') problems << "no trailing newline\n";
    const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    const std::regex help_re("# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)");
    const std::regex type_re(
        "# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)");
    // name, optional {labels}, value
    const std::regex sample_re("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)");
    const std::regex label_re("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\\\n]|\\\\[\\\\\"n])*)\"");
    std::set<std::string> helped, typed, done;
    std::string current;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (line.rfind("# HELP ", 0) == 0) {
            if (!std::regex_match(line, m, help_re))
                problems << "bad HELP: " << line << "\n";
            else if (!helped.insert(m[1]).second)
                problems << "HELP twice: " << m[1] << "\n";
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            if (!std::regex_match(line, m, type_re)) {
                problems << "bad TYPE: " << line << "\n";
                continue;
            }
            if (!typed.insert(m[1]).second) problems << "TYPE twice: " << m[1] << "\n";
            if (!current.empty() && current != m[1].str()) done.insert(current);
            current = m[1];
            (*types)[m[1]] = m[2];
            continue;
        }
        if (!std::regex_match(line, m, sample_re)) {
            problems << "bad sample line: " << line << "\n";
            continue;
        }
        const std::string name = m[1];
        if (!typed.count(name) || !helped.count(name))
            problems << "sample before its HELP and TYPE: " << line << "\n";
        if (name != current || done.count(name))
            problems << "samples of a family not together: " << line << "\n";
        std::string labels = m[3];
        std::string rest = labels;
        std::string key;
        while (!rest.empty()) {
            std::smatch lm;
            if (!std::regex_search(rest, lm, label_re) || lm.position(0) != 0) {
                problems << "bad labels: " << line << "\n";
                break;
            }
            if (lm[1].str().rfind("__", 0) == 0) problems << "reserved label: " << line << "\n";
            rest = lm.suffix();
            if (!rest.empty()) {
                if (rest[0] != ',') {
                    problems << "bad label separator: " << line << "\n";
                    break;
                }
                rest.erase(0, 1);
            }
        }
        const std::string value = m[4];
        char* end = nullptr;
        double v = std::strtod(value.c_str(), &end);
        if (value == "NaN")
            v = NAN;
        else if (value == "+Inf")
            v = INFINITY;
        else if (value == "-Inf")
            v = -INFINITY;
        else if (end == value.c_str() || *end != '\0')
            problems << "bad value: " << line << "\n";
        (*samples)[name + (labels.empty() ? "" : "{" + labels + "}")] = v;
    }
    return problems.str();
}

// The value of one sample, or nullopt when the text has no such sample (a map's operator[] would
// make a missing one 0, which is a value some tests expect).
std::optional<double> sample(const std::map<std::string, double>& samples, const std::string& key) {
    const auto it = samples.find(key);
    return it == samples.end() ? std::nullopt : std::optional<double>(it->second);
}

std::optional<std::string> type_of(const std::map<std::string, std::string>& types,
                                   const std::string& family) {
    const auto it = types.find(family);
    return it == types.end() ? std::nullopt : std::optional<std::string>(it->second);
}

protocol::StatusView running_status() {
    protocol::StatusView s;
    s.state = "running";
    s.phase = "running";
    s.tier = "weird \"tier\"\\name\nx";  // every character the format escapes
    s.tier_index = 1;
    s.step = 12;
    s.total_steps = 48;
    s.epoch = 2;
    s.epochs = 8;
    s.loss = 0.1234567890123;
    s.map50 = 0.5;
    s.rss = 123456789;
    s.memory_limit = 1ull << 31;
    s.device_mem = 0;
    s.pid = 42;
    s.launches = 3;
    s.supervisor_running = true;
    return s;
}

TEST(MetricsExposition, FollowsTheTextFormatRules) {
    MetricsCounters counters;
    for (const char* c : {"oom-killed", "crash", "crash"}) {
        protocol::ExitEvent exit;
        exit.exit_class = c;
        counters.observe(exit);
    }
    counters.observe(protocol::TierMoveEvent{"big", "small", "watchdog"});
    const std::string text = metrics_exposition(running_status(), counters);
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    EXPECT_EQ(check_exposition(text, &samples, &types), "") << text;

    EXPECT_EQ(sample(samples, "smartcash_up"), 1.0) << text;
    EXPECT_EQ(sample(samples, "smartcash_worker_exits_total{class=\"crash\"}"), 2.0) << text;
    EXPECT_EQ(sample(samples, "smartcash_worker_exits_total{class=\"oom-killed\"}"), 1.0) << text;
    EXPECT_EQ(samples.count("smartcash_worker_exits_total{class=\"hang\"}"), 1u) << text;
    EXPECT_EQ(sample(samples, "smartcash_tier_moves_total"), 1.0);
    EXPECT_EQ(sample(samples, "smartcash_tier_index{tier=\"weird \\\"tier\\\"\\\\name\\nx\"}"), 1.0)
        << text;
    EXPECT_EQ(sample(samples, "smartcash_step"), 12.0);
    EXPECT_EQ(sample(samples, "smartcash_total_steps"), 48.0);
    EXPECT_EQ(sample(samples, "smartcash_launches_total"), 3.0);
    ASSERT_TRUE(sample(samples, "smartcash_loss")) << text;
    EXPECT_DOUBLE_EQ(*sample(samples, "smartcash_loss"), 0.1234567890123);
    EXPECT_EQ(sample(samples, "smartcash_rss_bytes"), 123456789.0);
    EXPECT_EQ(sample(samples, "smartcash_memory_limit_bytes"), 2147483648.0);
    EXPECT_EQ(type_of(types, "smartcash_worker_exits_total"), std::string("counter"));
    EXPECT_EQ(type_of(types, "smartcash_rss_bytes"), std::string("gauge"));
    EXPECT_EQ(samples.count("smartcash_map50_95"), 0u) << "an unknown figure is left out";
}

// Prometheus' own checker on the same text. Where it is not installed the test says so as a skip
// (Debian: prometheus), rather than passing unchecked.
TEST(MetricsExposition, PromtoolAcceptsTheText) {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "promtool is not installed (Debian: prometheus); the text was checked "
                        "by hand only (MetricsExposition.FollowsTheTextFormatRules)";
    MetricsCounters counters;
    protocol::ExitEvent exit;
    exit.exit_class = "crash";
    counters.observe(exit);
    counters.observe(protocol::TierMoveEvent{"big", "small", "watchdog"});
    protocol::StatusView down;
    down.supervisor_running = false;
    for (const std::string& text :
         {metrics_exposition(running_status(), counters), metrics_exposition(down, {})}) {
        FILE* p = ::popen("promtool check metrics >/dev/null 2>&1", "w");
        ASSERT_NE(p, nullptr);
        std::fwrite(text.data(), 1, text.size(), p);
        EXPECT_EQ(::pclose(p), 0) << "promtool rejected:\n" << text;
    }
}

TEST(MetricsExposition, TheCheckerItselfRejectsWhatBreaksTheRules) {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    EXPECT_NE(check_exposition("smartcash_x 1", &samples, &types), "");  // no HELP/TYPE, no \n
    const std::string family = "# HELP a x\n# TYPE a gauge\n";
    EXPECT_EQ(check_exposition(family + "a{l=\"v\"} 1\n", &samples, &types), "");
    EXPECT_NE(check_exposition(family + "a{l=\"v\"\"} 1\n", &samples, &types), "");
    EXPECT_NE(check_exposition(family + "a{1l=\"v\"} 1\n", &samples, &types), "");
    EXPECT_NE(check_exposition(family + "a one\n", &samples, &types), "");
    EXPECT_NE(check_exposition(family + family + "a 1\n", &samples, &types), "");
}

TEST(MetricsExposition, ValuesAndLabelsAreSpelledAsPrometheusReadsThem) {
    EXPECT_EQ(format_sample_value(3), "3");
    EXPECT_EQ(format_sample_value(-0.5), "-0.5");
    EXPECT_EQ(format_sample_value(1e20), "1e+20");
    EXPECT_EQ(format_sample_value(NAN), "NaN");
    EXPECT_EQ(format_sample_value(INFINITY), "+Inf");
    EXPECT_EQ(format_sample_value(-INFINITY), "-Inf");
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(MetricsExposition, AStatusFromStateJsonSaysTheSupervisorIsDown) {
    protocol::StatusView s;
    s.supervisor_running = false;
    const std::string text = metrics_exposition(s, MetricsCounters{});
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    EXPECT_EQ(check_exposition(text, &samples, &types), "") << text;
    EXPECT_EQ(sample(samples, "smartcash_up"), 0.0) << text;
    EXPECT_EQ(samples.count("smartcash_loss"), 0u);
}

}  // namespace
}  // namespace smartcash::daemon
