#include "worker/distributed/world_agent.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/exit_codes.hpp"
#include "common/protocol.hpp"
#include "common/wire_fields.hpp"
#include "common/world_messages.hpp"
#include "worker/distributed/agent_channel.hpp"

#ifdef SMARTCASH_WITH_C10D
#include <ATen/Parallel.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "worker/distributed/tcp_store.hpp"
#endif

namespace smartcash::dist {

#ifdef SMARTCASH_WITH_C10D

namespace {

namespace world = protocol::world;
using Clock = std::chrono::steady_clock;
using Json = protocol::Json;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

/// The store failed (or could not be reached): the agent reports it and exits.
struct StoreFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// What this agent last read of one rank's figures.
struct Seen {
    std::int64_t seq = -1;                     ///< -1: never read
    std::optional<Clock::time_point> changed;  ///< when seq last changed, by this agent's clock
    std::int64_t round = -1;                   ///< the round that rank's agent was in
    world::Figures figures;
};

class Agent {
  public:
    Agent(const AgentOptions& options, int report_fd, int command_fd)
        : m_o(options), m_channel(report_fd, command_fd) {
        m_seen.resize(static_cast<std::size_t>(m_o.world_size));
    }

    int run() {
        try {
            connect();
        } catch (const StoreFailure& e) {
            return fail(e.what());
        }
        try {
            while (true) {
                if (!read_commands()) {
                    log("the supervisor closed the command channel: exiting");
                    return exit_code::done;
                }
                if (m_channel.gone()) {
                    log("the supervisor stopped reading: exiting");
                    return exit_code::done;
                }
                tick();
            }
        } catch (const std::exception& e) {
            return fail(std::string("the store at ") + store_name() +
                        " failed: " + first_line(e.what()));
        }
    }

  private:
    void log(const std::string& line) const {
        std::cerr << "world agent (rank " << m_o.rank << "): " << line << std::endl;
    }
    void send(const world::AgentMessage& message) { m_channel.send(message); }

    int fail(const std::string& message) {
        log(message);
        send(world::AgentError{message});
        return exit_code::internal_error;
    }

    /// Reads what the supervisor sent, waiting at most one poll interval; false once the command
    /// fd is closed.
    bool read_commands() {
        return m_channel.read(
            poll_interval_ms,
            [this](const world::AgentCommand& c) {
                std::visit([this](const auto& x) { on(x); }, c);
            },
            [this](const std::string& line) { log(line); });
    }

    // ---- the store ----

    std::string store_name() const {
        return fmt::format("{}:{}", m_o.master_host, m_o.master_port);
    }

    static std::vector<std::uint8_t> bytes(const std::string& text) {
        return std::vector<std::uint8_t>(text.begin(), text.end());
    }
    bool has(const std::string& key) { return m_store->check({key}); }
    std::string get(const std::string& key) {
        const auto value = m_store->get(key);
        return std::string(value.begin(), value.end());
    }
    void set(const std::string& key, const std::string& value) { m_store->set(key, bytes(value)); }
    std::optional<std::int64_t> get_integer(const std::string& key) {
        if (!has(key)) return std::nullopt;
        try {
            return std::stoll(get(key));
        } catch (const std::logic_error&) {
            return std::nullopt;
        }
    }

    void connect() {
        const auto timeout =
            std::chrono::milliseconds(static_cast<std::int64_t>(m_o.timeout_s * 1000));
        const auto deadline = Clock::now() + timeout;
        c10d::TCPStoreOptions options;
        options.port = static_cast<std::uint16_t>(m_o.master_port);
        options.isServer = m_o.rank == 0;
        options.waitWorkers = false;
        std::string last_error;
        while (true) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            options.timeout = std::max(left, std::chrono::milliseconds(1000));
            try {
                m_store = open_tcp_store(m_o.master_host, options).store;
                break;
            } catch (const std::exception& e) {
                last_error = first_line(e.what());
            }
            // rank 0 serves the store: a failure to serve (the port is taken) will not pass.
            if (options.isServer)
                throw StoreFailure(
                    fmt::format("cannot serve the store at {}: {}", store_name(), last_error));
            if (Clock::now() >= deadline)
                throw StoreFailure(fmt::format("cannot reach the store at {} within {} s: {}",
                                               store_name(), m_o.timeout_s, last_error));
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        m_store->setTimeout(timeout);
        try {
            // A rank that comes back joins the round the others will wait in: the current one
            // unless every rank has joined it already (it is running without this rank).
            const std::int64_t current = get_integer(world_keys::current_round()).value_or(0);
            std::vector<std::string> keys;
            for (int k = 0; k < m_o.world_size; ++k) keys.push_back(world_keys::join(current, k));
            m_next_round = m_store->check(keys) ? current + 1 : current;
        } catch (const std::exception& e) {
            throw StoreFailure(
                fmt::format("the store at {} failed: {}", store_name(), first_line(e.what())));
        }
        log(fmt::format("{} the store at {}; the next round is {}",
                        m_o.rank == 0 ? "serving" : "connected to", store_name(), m_next_round));
        send(world::Connected{m_o.rank, m_o.world_size, store_name(), m_next_round, m_o.rank == 0});
    }

    // ---- the rounds ----

    enum class Phase {
        idle,     ///< no round joined yet
        waiting,  ///< joined m_round, not every rank has
        formed,   ///< every rank joined m_round; the workers run
        ended,    ///< this rank published how its part of m_round ended
    };

    void raise_current_round(std::int64_t round) {
        const auto current = get_integer(world_keys::current_round());
        if (!current || *current < round) set(world_keys::current_round(), std::to_string(round));
    }

    void enter_round(std::int64_t round) {
        m_round = round;
        m_next_round = round + 1;
        m_phase = Phase::waiting;
        m_ends_seen = 0;
        m_peers_reported.clear();
        m_round_tiers.clear();
        set(world_keys::join(m_round, m_o.rank), std::to_string(m_tier));
        raise_current_round(m_round);
    }

    void on(const world::Join& join) {
        m_tier = join.tier;
        if (m_phase == Phase::waiting) {
            // Still forming: the same round, with the new proposal.
            set(world_keys::join(m_round, m_o.rank), std::to_string(m_tier));
            log(fmt::format("joined round {} again, at tier {}", m_round, m_tier));
        } else {
            enter_round(m_next_round);
            log(fmt::format("joined round {} at tier {}", m_round, m_tier));
        }
        m_next_view = Clock::now();  // show the world at once
    }

    void on(const world::Publish& publish) {
        if (m_phase == Phase::idle) {
            log("ignoring a publish before any join");
            return;
        }
        // Whether or not the round formed: the others stop (or never start) their part of it.
        set(world_keys::ended(m_round, m_o.rank),
            world::to_json(world::AgentCommand{publish}).dump());
        m_store->add(world_keys::ends(m_round), 1);
        m_phase = Phase::ended;
        log(fmt::format("published the end of round {}: {} ({})", m_round, publish.kind,
                        publish.exit_class));
    }

    void on(const world::Figures& figures) {
        Json value = Json::object();
        value["seq"] = ++m_seq;
        value["round"] = m_phase == Phase::idle ? m_next_round : m_round;
        value["figures"] = protocol::wire::to_object(figures);
        set(world_keys::figures(m_o.rank), value.dump());
    }

    /// Reports rank `k`'s published end of the current round, when it published one.
    bool report_published(int k) {
        const std::string key = world_keys::ended(m_round, k);
        if (!has(key)) return false;
        std::string error;
        std::optional<world::AgentCommand> command;
        if (auto json = protocol::decode(get(key), &error, protocol::command_key))
            command = world::agent_command_from_json(*json, &error);
        const auto* publish = command ? std::get_if<world::Publish>(&*command) : nullptr;
        world::PeerEnded ended;
        ended.round = m_round;
        ended.rank = k;
        if (publish) {
            ended.kind = publish->kind;
            ended.exit_class = publish->exit_class;
            ended.tier = publish->tier;
            ended.step = publish->step;
            ended.detail = publish->detail;
        } else {
            ended.kind = world::relaunch;
            ended.exit_class = "lost";
            ended.tier = tier_of(k);
            ended.detail = "its published end cannot be read: " + error;
        }
        m_peers_reported.insert(k);
        log(fmt::format("rank {} ended its part of round {}: {} ({})", k, m_round, ended.kind,
                        ended.exit_class));
        send(ended);
        return true;
    }

    int tier_of(int k) const {
        return static_cast<std::size_t>(k) < m_round_tiers.size()
                   ? m_round_tiers[static_cast<std::size_t>(k)]
                   : m_tier;
    }

    void report_lost(int k, const std::string& detail) {
        if (report_published(k)) return;  // it did say how it ended, just now
        world::PeerEnded ended;
        ended.round = m_round;
        ended.rank = k;
        ended.kind = world::relaunch;
        ended.exit_class = "lost";
        ended.tier = tier_of(k);
        ended.detail = detail;
        m_peers_reported.insert(k);
        log(fmt::format("rank {} is lost in round {}: {}", k, m_round, detail));
        send(ended);
    }

    void watch_ends() {
        const std::int64_t ends = m_store->add(world_keys::ends(m_round), 0);
        if (ends <= m_ends_seen) return;
        m_ends_seen = ends;
        bool any = false;
        for (int k = 0; k < m_o.world_size; ++k)
            if (k != m_o.rank && !m_peers_reported.count(k)) any = report_published(k) || any;
        if (any && m_phase == Phase::waiting) {
            // The round ended before it formed: nobody launches in it. Everyone who waits in it
            // moves on to the next one with the same proposal, where the publisher joins next.
            const std::int64_t abandoned = m_round;
            enter_round(m_round + 1);
            log(fmt::format("round {} ended before it formed: joined round {} at tier {}",
                            abandoned, m_round, m_tier));
        }
    }

    void watch_forming() {
        std::vector<std::string> keys;
        for (int k = 0; k < m_o.world_size; ++k) keys.push_back(world_keys::join(m_round, k));
        if (!m_store->check(keys)) return;
        world::Formed formed;
        formed.round = m_round;
        formed.tier = 0;
        for (const auto& key : keys) {
            int tier = 0;
            try {
                tier = std::stoi(get(key));
            } catch (const std::logic_error&) {
                tier = 0;
            }
            formed.tiers.push_back(tier);
            formed.tier = std::max(formed.tier, tier);
        }
        formed.prefix = world_keys::group_prefix(m_round);
        m_round_tiers = formed.tiers;
        m_phase = Phase::formed;
        m_formed_at = Clock::now();
        log(fmt::format("round {} formed at tier {}", m_round, formed.tier));
        send(formed);
    }

    void read_figures(Clock::time_point now) {
        for (int k = 0; k < m_o.world_size; ++k) {
            const std::string key = world_keys::figures(k);
            if (!has(key)) continue;
            const Json value = Json::parse(get(key), nullptr, /*allow_exceptions=*/false);
            if (!value.is_object()) continue;
            auto& seen = m_seen[static_cast<std::size_t>(k)];
            const std::int64_t seq = value.value("seq", std::int64_t{-1});
            if (seq != seen.seq) {
                seen.seq = seq;
                seen.changed = now;
            }
            seen.round = value.value("round", std::int64_t{-1});
            if (const auto it = value.find("figures"); it != value.end() && it->is_object())
                seen.figures = protocol::wire::from_object<world::Figures>(*it);
        }
    }

    void send_view(Clock::time_point now) {
        world::WorldView view;
        view.round = m_phase == Phase::idle ? m_next_round : m_round;
        if (m_phase == Phase::waiting)
            for (int k = 0; k < m_o.world_size; ++k)
                if (!has(world_keys::join(m_round, k))) view.waiting_for.push_back(k);
        for (int k = 0; k < m_o.world_size; ++k) {
            const auto& seen = m_seen[static_cast<std::size_t>(k)];
            world::RankView rank;
            rank.rank = k;
            if (seen.changed) {
                rank.state = seen.figures.state;
                rank.tier = seen.figures.tier;
                rank.step = seen.figures.step;
                rank.rss = seen.figures.rss;
                rank.device = seen.figures.device;
                rank.age_s = seconds(now - *seen.changed);
            }
            view.ranks.push_back(rank);
        }
        send(view);
    }

    void watch_lost(Clock::time_point now) {
        for (int k = 0; k < m_o.world_size; ++k) {
            if (k == m_o.rank || m_peers_reported.count(k)) continue;
            const auto& seen = m_seen[static_cast<std::size_t>(k)];
            if (seen.changed && seen.round > m_round) {
                // Its agent joined a later round without ending this one: it came back.
                report_lost(k, fmt::format("rank {} left round {} for round {} without ending it",
                                           k, m_round, seen.round));
                continue;
            }
            // Figures older than the round count from the round's start.
            const auto since = seen.changed ? std::max(*seen.changed, m_formed_at) : m_formed_at;
            const double silent = seconds(now - since);
            if (silent >= m_o.lost_after_s)
                report_lost(k, fmt::format("no figures from rank {} for {:.0f} s", k, silent));
        }
    }

    void tick() {
        if (m_phase != Phase::idle) watch_ends();
        if (m_phase == Phase::waiting) watch_forming();
        const auto now = Clock::now();
        if (now < m_next_view) return;
        m_next_view = now + std::chrono::seconds(1);
        read_figures(now);
        send_view(now);
        if (m_phase == Phase::formed) watch_lost(now);
    }

    static constexpr int poll_interval_ms = 50;

    AgentOptions m_o;
    AgentChannel m_channel;
    c10::intrusive_ptr<c10d::TCPStore> m_store;

    Phase m_phase = Phase::idle;
    std::int64_t m_next_round = 0;  ///< the round the next Join enters
    std::int64_t m_round = -1;      ///< the round joined last
    int m_tier = 0;                 ///< this rank's proposal for it
    std::vector<int> m_round_tiers;
    Clock::time_point m_formed_at{};
    std::int64_t m_ends_seen = 0;
    std::set<int> m_peers_reported;  ///< ranks whose end of m_round was sent
    std::int64_t m_seq = 0;          ///< this rank's figures, written so far
    std::vector<Seen> m_seen;
    Clock::time_point m_next_view{};
};

}  // namespace

int run_world_agent(const AgentOptions& options) {
    // A supervisor that goes away must not kill the agent with SIGPIPE: a failed write says so.
    std::signal(SIGPIPE, SIG_IGN);
    at::set_num_threads(1);
    Agent agent(options, options.report_fd, options.command_fd);
    return agent.run();
}

#else  // no c10d in this build

int run_world_agent(const AgentOptions&) {
    std::cerr << "error: this build has no c10d (the TCPStore of data-parallel training), so it "
                 "cannot run a world agent; build against a LibTorch with its distributed "
                 "headers (see docs/distributed.md)"
              << std::endl;
    return exit_code::config_error;
}

#endif

}  // namespace smartcash::dist
