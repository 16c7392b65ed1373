// Data-parallel training over PyTorch's c10d: the ranks of a job, configured like torchrun
// (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT), a TCPStore for the rendezvous (rank 0 serves it)
// and a Gloo process group for the collectives the training step needs. Without WORLD_SIZE, or
// with WORLD_SIZE=1, there is no process group at all. The c10d code is built only where the
// LibTorch found has it (SMARTCASH_WITH_C10D, decided by CMake); elsewhere a WORLD_SIZE above 1
// is a config error. docs/distributed.md describes the math and the agreement between ranks.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace smartcash::dist {

/// The ranks' settings, as the environment gives them.
struct DistEnv {
    int world_size = 1;
    int rank = 0;
    std::string master_addr;
    int master_port = 0;
    /// Rendezvous and collective timeout (SMARTCASH_DIST_TIMEOUT, seconds); 0: the defaults
    /// (5 minutes to rendezvous, 30 minutes for a collective).
    double timeout_s = 0;
    /// SMARTCASH_STORE_PREFIX: set by a supervisor whose world agent serves the store for the
    /// whole job (docs/distributed.md). Non-empty: no rank serves the store, every rank connects
    /// to it as a client and keeps its process group's keys under this prefix.
    std::string store_prefix;
    bool distributed() const { return world_size > 1; }
};

/// Reads WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, SMARTCASH_DIST_TIMEOUT and
/// SMARTCASH_STORE_PREFIX through `get`
/// (getenv by default). Throws ConfigError naming the variable for a value that is not a number,
/// a rank out of range, a missing address or a port outside 1..65535.
DistEnv read_dist_env(const std::function<const char*(const char*)>& get = {});

/// A world size whose ranks cannot each take whole micro-batches of `tier` is a ConfigError
/// naming training.effective_batch and the tier: effective_batch % (world * micro_batch) != 0.
void check_world_fits(const Config& config, const TierConfig& tier, int world_size);

/// True when this build has the c10d/Gloo code.
bool c10d_available();

/// A ConfigError when `env` asks for several ranks and this build has no c10d/Gloo.
void require_c10d(const DistEnv& env);

/// A collective failed: a rank died, or did not reach the same collective within the timeout.
class DistributedError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// The process group of one rank. All calls are collectives: every rank makes the same calls in
/// the same order.
class ProcessGroupContext {
  public:
    /// Rendezvous with the other ranks (rank 0 serves the TCPStore at MASTER_ADDR:MASTER_PORT;
    /// with a store prefix, none does: the world agent of rank 0's supervisor serves it).
    /// Throws ConfigError when this build has no c10d/Gloo, DistributedError when the rendezvous
    /// fails or times out.
    static std::unique_ptr<ProcessGroupContext> connect(const DistEnv& env);
    ~ProcessGroupContext();
    ProcessGroupContext(const ProcessGroupContext&) = delete;
    ProcessGroupContext& operator=(const ProcessGroupContext&) = delete;

    int rank() const { return m_env.rank; }
    int world_size() const { return m_env.world_size; }

    /// Sums the tensors over the ranks in place, through one flat buffer per dtype and device
    /// (concatenated, one all-reduce, copied back).
    void allreduce_sum(const std::vector<torch::Tensor>& tensors, const char* what);
    /// Sums a few numbers over the ranks.
    std::vector<double> allreduce_sum(const std::vector<double>& values, const char* what);
    /// The element-wise maximum over the ranks.
    std::vector<std::int64_t> allreduce_max(const std::vector<std::int64_t>& values,
                                            const char* what);
    /// Overwrites the tensors with rank 0's, through one flat buffer per dtype and device.
    void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors, const char* what);

  private:
    struct Impl;
    explicit ProcessGroupContext(DistEnv env);
    DistEnv m_env;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace smartcash::dist
