#include "common/commands.hpp"

#include "common/wire_fields.hpp"

namespace smartcash::protocol {

Json to_json(const WorkerCommand& command) {
    return wire::variant_to_json(command, command_key, version);
}

std::optional<WorkerCommand> command_from_json(const Json& message, std::string* error) {
    return wire::variant_from_json<WorkerCommand>(message, command_key, "command", error);
}

}  // namespace smartcash::protocol
