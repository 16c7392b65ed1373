#include "common/world_messages.hpp"

#include "common/wire_fields.hpp"

namespace smartcash::protocol::world {

Json to_json(const AgentCommand& command) {
    return wire::variant_to_json(command, command_key, version);
}

Json to_json(const AgentMessage& message) {
    return wire::variant_to_json(message, report_key, version);
}

std::optional<AgentCommand> agent_command_from_json(const Json& message, std::string* error) {
    return wire::variant_from_json<AgentCommand>(message, command_key, "agent command", error);
}

std::optional<AgentMessage> agent_message_from_json(const Json& message, std::string* error) {
    return wire::variant_from_json<AgentMessage>(message, report_key, "agent message", error);
}

}  // namespace smartcash::protocol::world
