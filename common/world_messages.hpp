// Supervisor <-> world agent: how the supervisors of a data-parallel job agree
// (docs/distributed.md).
//
// Each smartcashd of a job with several ranks runs one `smartcash-worker world-agent`, a small
// process that holds a c10d TCPStore client (rank 0's agent also serves the store, for the whole
// job's life, so it outlives every worker launch). The supervisor never links LibTorch: it talks
// to its agent over the same two pipes it uses with a worker. Commands carry "cmd", the agent's
// messages carry "type". The agent counts the rounds: a round is one launch of every rank's worker,
// formed when every rank has joined it, over when any rank's worker ended.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/protocol.hpp"

namespace smartcash::protocol::world {

// ---- supervisor -> agent ----

/// This rank is ready to launch its worker in the next round, at tier index `tier` (its own
/// judgement). The agent answers with Formed once every rank has joined.
struct Join {
    static constexpr const char* name = "join";
    int tier = 0;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
    }
};

/// What ended this rank's part of the current round, for the other ranks.
/// kind: "relaunch" (every rank stops its worker and joins the next round), "stop" (the job stops
/// on every rank), "failed" (the job fails on every rank; `detail` says why).
struct Publish {
    static constexpr const char* name = "publish";
    std::string kind;
    std::string exit_class;  ///< this rank's worker end ("oom", "crash", ...; "" for a request)
    int tier = 0;            ///< the tier this rank goes on at
    std::int64_t step = -1;  ///< the newest checkpoint step this rank knows
    std::string detail;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("kind", s.kind), v("exit_class", s.exit_class), v("tier", s.tier), v("step", s.step);
        v("detail", s.detail);
    }
};

/// This rank's figures for the others' status (sent about once a second).
struct Figures {
    static constexpr const char* name = "figures";
    std::string state;  ///< the worker phase ("running", "joining", ...)
    std::string tier;
    std::int64_t step = -1;
    std::uint64_t rss = 0;
    std::string device;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("state", s.state), v("tier", s.tier), v("step", s.step), v("rss", s.rss);
        v("device", s.device);
    }
};

using AgentCommand = std::variant<Join, Publish, Figures>;

// ---- agent -> supervisor ----

/// The agent reached the store. `round` is the round this rank joins next.
struct Connected {
    static constexpr const char* name = "connected";
    int rank = 0;
    int world_size = 0;
    std::string store;  ///< HOST:PORT
    std::int64_t round = 0;
    bool serving = false;  ///< this agent serves the store (rank 0)

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("rank", s.rank), v("world_size", s.world_size), v("store", s.store);
        v("round", s.round), v("serving", s.serving);
    }
};

/// Every rank joined `round`: launch the worker at `tier` (the lowest tier any rank asked for,
/// the highest index), with the store's keys under `prefix`.
struct Formed {
    static constexpr const char* name = "formed";
    std::int64_t round = 0;
    int tier = 0;
    std::vector<int> tiers;  ///< each rank's proposal, by rank
    std::string prefix;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("round", s.round), v("tier", s.tier), v("tiers", s.tiers), v("prefix", s.prefix);
    }
};

/// Another rank's part of the current round ended (what it published), or the rank went silent
/// for longer than the agent's lost-rank timeout (kind "relaunch", exit_class "lost").
struct PeerEnded {
    static constexpr const char* name = "peer_ended";
    std::int64_t round = 0;
    int rank = 0;
    std::string kind;
    std::string exit_class;
    int tier = 0;
    std::int64_t step = -1;
    std::string detail;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("round", s.round), v("rank", s.rank), v("kind", s.kind);
        v("exit_class", s.exit_class), v("tier", s.tier), v("step", s.step);
        v("detail", s.detail);
    }
};

/// One rank as the others see it.
struct RankView {
    int rank = 0;
    std::string state;
    std::string tier;
    std::int64_t step = -1;
    std::uint64_t rss = 0;
    std::string device;
    double age_s = -1;  ///< seconds since its figures last changed (-1: never seen)

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("rank", s.rank), v("state", s.state), v("tier", s.tier), v("step", s.step);
        v("rss", s.rss), v("device", s.device), v("age_s", s.age_s);
    }
};

/// The whole world, about once a second.
struct WorldView {
    static constexpr const char* name = "world";
    std::int64_t round = 0;
    std::vector<int> waiting_for;  ///< ranks not yet joined, while this rank waits for a round
    std::vector<RankView> ranks;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("round", s.round), v("waiting_for", s.waiting_for), v("ranks", s.ranks);
    }
};

/// The agent cannot go on (the store is unreachable or lost); it exits after this.
struct AgentError {
    static constexpr const char* name = "agent_error";
    std::string message;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("message", s.message);
    }
};

using AgentMessage = std::variant<Connected, Formed, PeerEnded, WorldView, AgentError>;

Json to_json(const AgentCommand& command);
Json to_json(const AgentMessage& message);
std::optional<AgentCommand> agent_command_from_json(const Json& message, std::string* error);
std::optional<AgentMessage> agent_message_from_json(const Json& message, std::string* error);

/// Publish::kind values.
inline constexpr const char* relaunch = "relaunch";
inline constexpr const char* stop = "stop";
inline constexpr const char* failed = "failed";

}  // namespace smartcash::protocol::world
