// `smartcash-worker world-agent`: the small long-lived process through which the supervisors of
// a data-parallel job agree (common/world_messages.hpp is its protocol, docs/distributed.md its
// key layout and round rules). It holds a c10d TCPStore (rank 0's agent serves it for the whole
// job) and speaks JSON lines with its supervisor over the report and command fds. It never
// trains. Built only where the LibTorch has c10d (SMARTCASH_WITH_C10D); elsewhere it says so and
// exits with config_error.
#pragma once

#include <cstdint>
#include <string>

namespace smartcash::dist {

struct AgentOptions {
    int rank = 0;
    int world_size = 0;
    std::string master_host;  ///< the host of rank 0's agent, which serves the store
    int master_port = 0;
    /// While a round is formed, a rank whose figures did not change for this long is reported
    /// lost (PeerEnded, exit_class "lost").
    double lost_after_s = 30;
    /// How long a client agent tries to reach the store before it gives up.
    double timeout_s = 300;
    /// The channel: these fds, else SMARTCASH_REPORT_FD / SMARTCASH_COMMAND_FD, else stdout and
    /// stdin.
    int report_fd = -1;
    int command_fd = -1;
};

/// The store keys of the agents (all under "smartcash/"); docs/distributed.md lists them.
namespace world_keys {
std::string current_round();
std::string join(std::int64_t round, int rank);
std::string ended(std::int64_t round, int rank);
std::string ends(std::int64_t round);
std::string figures(int rank);
/// The prefix under which the workers of `round` keep their process group's keys.
std::string group_prefix(std::int64_t round);
}  // namespace world_keys

/// Runs the agent until its command fd closes (0), the store fails (internal_error, after an
/// agent_error message) or, in a build without c10d, at once (config_error).
int run_world_agent(const AgentOptions& options);

}  // namespace smartcash::dist
