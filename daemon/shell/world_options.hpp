// The ranks of a data-parallel job as smartcashd is told them: --nnodes/--node-rank/--master, or
// the variables torchrun sets (docs/distributed.md).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace smartcash::daemon {

/// The ranks of a job, from smartcashd's --nnodes/--node-rank/--master or the torchrun variables.
struct WorldOptions {
    int world_size = 1;
    int rank = 0;
    std::string master_addr;
    int master_port = 0;
    /// Seconds without news from a rank, while a round runs, before the others treat it as lost.
    double lost_after_s = 30;
    bool several() const { return world_size > 1; }
    std::string master() const { return master_addr + ":" + std::to_string(master_port); }
};

/// A whole number 0..1000000 written in full ("12"; not "", "1x" or "-1"), from a flag or a
/// variable.
std::optional<int> whole_number(const char* text);

/// Reads WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT through `get` into `o` where set. Returns
/// an error message for a value that is not a whole number; check_world() checks the rest.
std::optional<std::string> world_from_environment(
    WorldOptions& o, const std::function<const char*(const char*)>& get);
/// Returns what is wrong with `o`: a world size below 1, or with several ranks a rank out of
/// range, no address of rank 0, a port outside 1..65535, or --lost-after not above 0.
std::optional<std::string> check_world(const WorldOptions& o);

}  // namespace smartcash::daemon
