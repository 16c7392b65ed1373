// The worker's end of the supervisor channel over real pipes. A stop request is process-wide
// state (stop_request.hpp), so each case runs in a child process of its own (a death test) and
// tells the parent what it saw through its exit status and stderr.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "common/exit_codes.hpp"
#include "worker/channel/report_channel.hpp"
#include "worker/channel/stop_request.hpp"

namespace smartcash::train {
namespace {

// What a poll saw, on stderr for the parent's regex; exits 0.
[[noreturn]] void report_and_exit(const std::optional<protocol::WorkerCommand>& command) {
    std::cerr << "command=" << (command ? protocol::to_json(*command).value("cmd", "?") : "none")
              << " stop=" << (stop_requested() ? "yes" : "no") << " reason=" << stop_reason()
              << " code=" << stop_exit_code() << std::endl;
    std::exit(0);
}

class TrainReportChannel : public ::testing::Test {
  protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// On macOS there is no parent-death signal: the command pipe at end of file is how the worker
// learns that the supervisor is gone (its write end closes when it dies, even by SIGKILL).
TEST_F(TrainReportChannel, CommandPipeAtEndOfFileAsksForACheckpointAndStop) {
    EXPECT_EXIT(
        {
            int fds[2];
            if (::pipe(fds) != 0) std::exit(2);
            ::close(fds[1]);  // the supervisor's end
            ReportChannel channel(-1, fds[0]);
            report_and_exit(channel.poll_command());
        },
        ::testing::ExitedWithCode(0),
        "command=none stop=yes reason=supervisor gone code=" +
            std::to_string(exit_code::requested_stop));
}

TEST_F(TrainReportChannel, AnOpenCommandPipeWithNothingInItAsksForNothing) {
    EXPECT_EXIT(
        {
            int fds[2];
            if (::pipe(fds) != 0) std::exit(2);
            ReportChannel channel(-1, fds[0]);  // fds[1] stays open: the supervisor is there
            report_and_exit(channel.poll_command());
        },
        ::testing::ExitedWithCode(0), "command=none stop=no reason=requested");
}

// The supervisor's last command comes first: a checkpoint_and_stop written just before the
// pipe closed keeps its own reason.
TEST_F(TrainReportChannel, CommandsWrittenBeforeTheEndAreReadFirst) {
    EXPECT_EXIT(
        {
            int fds[2];
            if (::pipe(fds) != 0) std::exit(2);
            const std::string line = "{\"cmd\":\"checkpoint\"}\n";
            if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
                std::exit(2);
            ::close(fds[1]);
            ReportChannel channel(-1, fds[0]);
            auto first = channel.poll_command();
            if (!first || stop_requested()) report_and_exit(first);
            report_and_exit(channel.poll_command());
        },
        ::testing::ExitedWithCode(0), "command=none stop=yes reason=supervisor gone");
}

}  // namespace
}  // namespace smartcash::train
