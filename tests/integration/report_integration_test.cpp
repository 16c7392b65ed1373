// `smartcashctl report` on a real run: the in-process OOM job (tier big fails at step 3, small
// resumes from the emergency checkpoint and finishes) drawn by the real smartcashctl; the SVG is
// well-formed and shows that tier move where the journal puts it, and one loss point per step.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include "common/metrics_records.hpp"
#include "common/run_dir.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

TEST(IntegrationReport, DrawsTheTierMoveOfARealRun) {
    Scratch s("report");
    Daemon d(s, fixture("supervisor_oom.yaml"), SMARTCASH_WORKER_PATH);
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u) << dump(events(s));
    const std::int64_t resumed = step_of(hellos[1], "resumed_step");

    const std::string out = s.file("night.svg");
    std::string printed;
    ASSERT_EQ(
        run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "report", "--out", out}, &printed), 0)
        << printed;
    const std::string svg = slurp(out);
    // In the loss panel and in the memory panel.
    EXPECT_EQ(count(svg, "<g class=\"tier-move\" data-step=\"" + std::to_string(resumed) +
                             "\" data-to=\"small\">"),
              2u)
        << svg;
    EXPECT_NE(svg.find(">(oom)</tspan></text>"), std::string::npos);
    EXPECT_NE(svg.find("exits by class: done 1, oom 1"), std::string::npos);

    std::set<std::int64_t> steps;
    for (const auto& r : protocol::read_metrics_file(run_dir::metrics(s.run())))
        if (const auto* step = std::get_if<protocol::StepMetrics>(&r)) steps.insert(step->step);
    const auto points = svg.find("<polyline class=\"loss\"");
    ASSERT_NE(points, std::string::npos);
    const auto end = svg.find("/>", points);
    const std::string loss = svg.substr(points, end - points);
    EXPECT_EQ(count(loss, ","), steps.size()) << "one point per step: " << loss;

    // Last, so that everything above is checked either way: libxml2's parser reads the file, or
    // the test says it could not (Debian: libxml2-utils).
    if (std::system("command -v xmllint >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "xmllint is not installed (Debian: libxml2-utils): all was checked but "
                        "that the SVG is well-formed XML";
    EXPECT_EQ(std::system(("xmllint --noout '" + out + "'").c_str()), 0) << out;
}

}  // namespace
}  // namespace smartcash::integration
