// The store keys of the world agents (docs/distributed.md, "Store keys").
#include <string>

#include "worker/distributed/world_agent.hpp"

namespace smartcash::dist {

namespace world_keys {
namespace {
std::string round_key(std::int64_t round) { return "smartcash/r/" + std::to_string(round) + "/"; }
}  // namespace
std::string current_round() { return "smartcash/current_round"; }
std::string join(std::int64_t round, int rank) {
    return round_key(round) + "join/" + std::to_string(rank);
}
std::string ended(std::int64_t round, int rank) {
    return round_key(round) + "ended/" + std::to_string(rank);
}
std::string ends(std::int64_t round) { return round_key(round) + "ends"; }
std::string figures(int rank) { return "smartcash/figures/" + std::to_string(rank); }
std::string group_prefix(std::int64_t round) { return round_key(round) + "pg/"; }
}  // namespace world_keys

}  // namespace smartcash::dist
