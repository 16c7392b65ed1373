// The journal entries of a job with several ranks (docs/distributed.md): this rank waits for the
// others, the round forms, another rank's part of the round ends, the world agent comes and goes.
// Part of the journal's vocabulary (journal_events.hpp includes this file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smartcash::protocol {

/// This rank is ready to launch and waits for every rank to join the next round.
struct WorldJoinEvent {
    static constexpr const char* name = "world-join";
    int rank = 0;
    std::string tier;  ///< the tier this rank asks for
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("rank", s.rank);
        v("tier", s.tier);
    }
};

/// Every rank joined: the round's workers launch at `tier`.
struct WorldFormedEvent {
    static constexpr const char* name = "world-formed";
    std::int64_t round = 0;
    std::string tier;
    std::vector<int> tiers;  ///< each rank's proposal (tier index), by rank
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("round", s.round);
        v("tier", s.tier);
        v("tiers", s.tiers);
    }
};

/// Another rank's worker ended (or the rank went silent): what it published.
struct PeerEndedEvent {
    static constexpr const char* name = "peer-ended";
    std::int64_t round = 0;
    int rank = 0;
    std::string kind;  ///< relaunch, stop, failed
    std::string exit_class;
    std::string tier;  ///< the tier that rank goes on at
    std::int64_t step = -1;
    std::string detail;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("round", s.round);
        v("rank", s.rank);
        v("kind", s.kind);
        v("exit_class", s.exit_class);
        v("tier", s.tier);
        v("step", s.step);
        v("detail", s.detail);
    }
};

/// This rank told the others how its part of the round ended.
struct WorldPublishEvent {
    static constexpr const char* name = "world-publish";
    int rank = 0;
    std::string kind;
    std::string exit_class;
    std::string tier;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("rank", s.rank);
        v("kind", s.kind);
        v("exit_class", s.exit_class);
        v("tier", s.tier);
    }
};

/// The world agent connected to the store, or was lost (state "connected" / "lost").
struct WorldAgentEvent {
    static constexpr const char* name = "world-agent";
    std::string state;
    std::string store;
    std::string message;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("state", s.state);
        v("store", s.store);
        v("message", s.message);
    }
};

}  // namespace smartcash::protocol
