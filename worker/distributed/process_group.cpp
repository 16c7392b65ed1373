#include "worker/distributed/process_group.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <map>
#include <utility>

#ifdef SMARTCASH_WITH_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "worker/distributed/tcp_store.hpp"
#endif

namespace smartcash::dist {

namespace {

constexpr const char* environment = "(environment)";

std::int64_t parse_integer(const char* name, const std::string& text) {
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size())
        throw ConfigError(environment, 0, 0, name, fmt::format("'{}' is not a whole number", text));
    return value;
}

std::chrono::milliseconds timeout_or(double seconds, std::chrono::milliseconds fallback) {
    return seconds > 0 ? std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000))
                       : fallback;
}

/// The first line of an error text.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

DistEnv read_dist_env(const std::function<const char*(const char*)>& get_given) {
    const auto get = [&](const char* name) -> std::string {
        const char* value = get_given ? get_given(name) : std::getenv(name);
        return value ? value : "";
    };
    DistEnv env;
    const std::string world = get("WORLD_SIZE");
    if (world.empty()) return env;
    env.world_size = static_cast<int>(parse_integer("WORLD_SIZE", world));
    if (env.world_size < 1 || env.world_size > 4096)
        throw ConfigError(environment, 0, 0, "WORLD_SIZE",
                          fmt::format("{} is not a number of ranks (1 to 4096)", world));
    const std::string rank = get("RANK");
    if (!rank.empty())
        env.rank = static_cast<int>(parse_integer("RANK", rank));
    else if (env.world_size > 1)
        throw ConfigError(environment, 0, 0, "RANK",
                          fmt::format("WORLD_SIZE is {} but RANK is not set", env.world_size));
    if (env.rank < 0 || env.rank >= env.world_size)
        throw ConfigError(environment, 0, 0, "RANK",
                          fmt::format("{} is out of range for WORLD_SIZE {} (0 to {})", env.rank,
                                      env.world_size, env.world_size - 1));
    if (!env.distributed()) return env;
    env.master_addr = get("MASTER_ADDR");
    if (env.master_addr.empty())
        throw ConfigError(environment, 0, 0, "MASTER_ADDR",
                          fmt::format("WORLD_SIZE is {} but MASTER_ADDR (the host of rank 0) is "
                                      "not set",
                                      env.world_size));
    const std::string port = get("MASTER_PORT");
    if (port.empty())
        throw ConfigError(
            environment, 0, 0, "MASTER_PORT",
            fmt::format("WORLD_SIZE is {} but MASTER_PORT is not set", env.world_size));
    const auto port_value = parse_integer("MASTER_PORT", port);
    if (port_value < 1 || port_value > 65535)
        throw ConfigError(environment, 0, 0, "MASTER_PORT",
                          fmt::format("{} is not a TCP port (1 to 65535)", port));
    env.master_port = static_cast<int>(port_value);
    const std::string timeout = get("SMARTCASH_DIST_TIMEOUT");
    if (!timeout.empty()) {
        env.timeout_s = static_cast<double>(parse_integer("SMARTCASH_DIST_TIMEOUT", timeout));
        if (env.timeout_s <= 0)
            throw ConfigError(environment, 0, 0, "SMARTCASH_DIST_TIMEOUT",
                              fmt::format("{} is not a positive number of seconds", timeout));
    }
    env.store_prefix = get("SMARTCASH_STORE_PREFIX");
    return env;
}

void check_world_fits(const Config& config, const TierConfig& tier, int world_size) {
    const int effective = config.training.effective_batch;
    const int per_step = world_size * tier.micro_batch;
    if (world_size > 1 && effective % per_step != 0)
        throw ConfigError(
            config.source_path, 0, 0, "training.effective_batch",
            fmt::format("{} images per step cannot be split over {} ranks in whole micro-batches "
                        "of tier '{}' (micro-batch {}): training.effective_batch must be a "
                        "multiple of {} x {} = {}",
                        effective, world_size, tier.name, tier.micro_batch, world_size,
                        tier.micro_batch, per_step));
}

void require_c10d(const DistEnv& env) {
    if (env.distributed() && !c10d_available())
        throw ConfigError(environment, 0, 0, "WORLD_SIZE",
                          fmt::format("WORLD_SIZE is {}, but this build has no c10d/Gloo: build "
                                      "against a LibTorch with its distributed headers and Gloo "
                                      "(see docs/distributed.md), or run one process",
                                      env.world_size));
}

#ifdef SMARTCASH_WITH_C10D

bool c10d_available() { return true; }

struct ProcessGroupContext::Impl {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
    std::chrono::milliseconds timeout{0};
};

namespace {

/// Gloo's network device: loopback when rank 0 is on this machine's loopback, the interface
/// GLOO_SOCKET_IFNAME names, or the address this machine's host name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface)
        return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
    if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0 || master_addr == "::1")
        return c10d::ProcessGroupGloo::createDeviceForHostname(master_addr);
    return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

ProcessGroupContext::ProcessGroupContext(DistEnv env)
    : m_env(std::move(env)), m_impl(std::make_unique<Impl>()) {}

ProcessGroupContext::~ProcessGroupContext() = default;

std::unique_ptr<ProcessGroupContext> ProcessGroupContext::connect(const DistEnv& env) {
    std::unique_ptr<ProcessGroupContext> context(new ProcessGroupContext(env));
    auto& impl = *context->m_impl;
    const auto rendezvous = timeout_or(env.timeout_s, std::chrono::minutes(5));
    impl.timeout = timeout_or(env.timeout_s, std::chrono::minutes(30));
    try {
        c10d::TCPStoreOptions options;
        options.port = static_cast<std::uint16_t>(env.master_port);
        // With a prefix the store outlives this launch (a world agent serves it): every rank
        // is a client, and this launch's keys stay apart from any other launch's.
        const bool shared_store = !env.store_prefix.empty();
        options.isServer = env.rank == 0 && !shared_store;
        options.numWorkers = static_cast<std::size_t>(env.world_size);
        options.waitWorkers = !shared_store;
        options.timeout = rendezvous;
        impl.store = open_tcp_store(env.master_addr, options).store;
        if (shared_store) {
            // PrefixStore puts its own '/' between the prefix and each key.
            std::string prefix = env.store_prefix;
            while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
            impl.store = c10::make_intrusive<c10d::PrefixStore>(prefix, impl.store);
        }
        auto group_options = c10d::ProcessGroupGloo::Options::create(impl.timeout);
        group_options->devices.push_back(gloo_device(env.master_addr));
        impl.group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl.store, env.rank,
                                                                 env.world_size, group_options);
    } catch (const std::exception& e) {
        throw DistributedError(
            fmt::format("rank {} of {}: the rendezvous at {}:{} failed (within {} s): {}", env.rank,
                        env.world_size, env.master_addr, env.master_port,
                        std::chrono::duration_cast<std::chrono::seconds>(rendezvous).count(),
                        first_line(e.what())));
    }
    return context;
}

namespace {

template <class Launch>
void run_collective(const ProcessGroupContext& context, std::chrono::milliseconds timeout,
                    const char* what, Launch&& launch) {
    try {
        auto work = launch();
        work->wait(timeout);
    } catch (const std::exception& e) {
        throw DistributedError(fmt::format(
            "rank {} of {}: the collective '{}' failed: {} (another rank has died, or did not "
            "reach it within {} s)",
            context.rank(), context.world_size(), what, first_line(e.what()),
            std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
    }
}

/// The tensors grouped into flat CPU buffers, one per dtype and device, in a fixed order (the
/// same on every rank when the tensors are).
struct Buckets {
    std::vector<std::vector<torch::Tensor>> members;
    std::vector<torch::Tensor> flat;

    explicit Buckets(const std::vector<torch::Tensor>& tensors) {
        std::map<std::pair<int, std::string>, std::size_t> index;
        for (const auto& t : tensors) {
            const auto key = std::make_pair(static_cast<int>(t.scalar_type()), t.device().str());
            auto [it, added] = index.emplace(key, members.size());
            if (added) members.emplace_back();
            members[it->second].push_back(t);
        }
        torch::NoGradGuard no_grad;
        for (const auto& group : members) {
            std::vector<torch::Tensor> pieces;
            pieces.reserve(group.size());
            for (const auto& t : group) pieces.push_back(t.detach().reshape({-1}));
            flat.push_back(torch::cat(pieces).to(torch::kCPU).contiguous());
        }
    }

    void copy_back() {
        torch::NoGradGuard no_grad;
        for (std::size_t b = 0; b < members.size(); ++b) {
            std::int64_t offset = 0;
            for (auto& t : members[b]) {
                const auto n = t.numel();
                t.copy_(flat[b].narrow(0, offset, n).view(t.sizes()));
                offset += n;
            }
        }
    }
};

}  // namespace

void ProcessGroupContext::allreduce_sum(const std::vector<torch::Tensor>& tensors,
                                        const char* what) {
    if (tensors.empty()) return;
    Buckets buckets(tensors);
    for (auto& flat : buckets.flat) {
        std::vector<torch::Tensor> one{flat};
        run_collective(*this, m_impl->timeout, what, [&] { return m_impl->group->allreduce(one); });
    }
    buckets.copy_back();
}

std::vector<double> ProcessGroupContext::allreduce_sum(const std::vector<double>& values,
                                                       const char* what) {
    auto t = torch::tensor(values, torch::kFloat64);
    std::vector<torch::Tensor> one{t};
    run_collective(*this, m_impl->timeout, what, [&] { return m_impl->group->allreduce(one); });
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

std::vector<std::int64_t> ProcessGroupContext::allreduce_max(
    const std::vector<std::int64_t>& values, const char* what) {
    auto t = torch::tensor(values, torch::kInt64);
    std::vector<torch::Tensor> one{t};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::MAX;
    run_collective(*this, m_impl->timeout, what,
                   [&] { return m_impl->group->allreduce(one, options); });
    return std::vector<std::int64_t>(t.data_ptr<std::int64_t>(),
                                     t.data_ptr<std::int64_t>() + t.numel());
}

void ProcessGroupContext::broadcast_from_rank0(const std::vector<torch::Tensor>& tensors,
                                               const char* what) {
    if (tensors.empty()) return;
    Buckets buckets(tensors);
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    for (auto& flat : buckets.flat) {
        std::vector<torch::Tensor> one{flat};
        run_collective(*this, m_impl->timeout, what,
                       [&] { return m_impl->group->broadcast(one, options); });
    }
    buckets.copy_back();
}

#else  // no c10d/Gloo in this build

bool c10d_available() { return false; }

struct ProcessGroupContext::Impl {};

ProcessGroupContext::ProcessGroupContext(DistEnv env) : m_env(std::move(env)) {}
ProcessGroupContext::~ProcessGroupContext() = default;

std::unique_ptr<ProcessGroupContext> ProcessGroupContext::connect(const DistEnv& env) {
    require_c10d(env);
    throw ConfigError(environment, 0, 0, "WORLD_SIZE", "one process needs no process group");
}

void ProcessGroupContext::allreduce_sum(const std::vector<torch::Tensor>&, const char*) {}
std::vector<double> ProcessGroupContext::allreduce_sum(const std::vector<double>& values,
                                                       const char*) {
    return values;
}
std::vector<std::int64_t> ProcessGroupContext::allreduce_max(
    const std::vector<std::int64_t>& values, const char*) {
    return values;
}
void ProcessGroupContext::broadcast_from_rank0(const std::vector<torch::Tensor>&, const char*) {}

#endif

}  // namespace smartcash::dist
