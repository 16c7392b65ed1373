#include "daemon/shell/world_options.hpp"

#include <cstdlib>

namespace smartcash::daemon {

std::optional<int> whole_number(const char* text) {
    if (!text || !*text) return std::nullopt;
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000000) return std::nullopt;
    return static_cast<int>(v);
}

std::optional<std::string> check_world(const WorldOptions& o) {
    if (o.world_size < 1) return "the world size (--nnodes, WORLD_SIZE) must be at least 1";
    if (!o.several()) return std::nullopt;
    if (o.rank < 0 || o.rank >= o.world_size)
        return "rank " + std::to_string(o.rank) + " (--node-rank, RANK) is out of range for " +
               std::to_string(o.world_size) + " ranks: 0 to " + std::to_string(o.world_size - 1);
    if (o.master_addr.empty())
        return "several ranks need the address of rank 0 (--master HOST:PORT, or MASTER_ADDR)";
    if (o.master_port < 1 || o.master_port > 65535)
        return "the port of rank 0 (--master HOST:PORT, MASTER_PORT) must be 1..65535";
    if (o.lost_after_s <= 0) return "--lost-after must be above 0 seconds";
    return std::nullopt;
}

std::optional<std::string> world_from_environment(
    WorldOptions& o, const std::function<const char*(const char*)>& get) {
    struct Var {
        const char* name;
        int* out;
    };
    for (const Var& v : {Var{"WORLD_SIZE", &o.world_size}, Var{"RANK", &o.rank},
                         Var{"MASTER_PORT", &o.master_port}}) {
        const char* text = get(v.name);
        if (!text || !*text) continue;
        auto n = whole_number(text);
        if (!n) return std::string(v.name) + "='" + text + "' is not a whole number";
        *v.out = *n;
    }
    if (const char* addr = get("MASTER_ADDR"); addr && *addr) o.master_addr = addr;
    return std::nullopt;
}

}  // namespace smartcash::daemon
