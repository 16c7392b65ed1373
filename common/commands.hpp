// Supervisor -> worker: the commands the supervisor writes on the worker's command fd
// (docs/protocol.md). Messages on this channel are told apart by their "cmd" field.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "common/protocol.hpp"

namespace smartcash::protocol {

/// Write a checkpoint after the current micro-batch and keep training.
struct CheckpointCommand {
    static constexpr const char* name = "checkpoint";
    std::string reason;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("reason", s.reason);
    }
};

/// Finish the current micro-batch, checkpoint, and exit with `exit_code` (default: the
/// requested_stop code).
struct CheckpointAndStop {
    static constexpr const char* name = "checkpoint_and_stop";
    std::string reason;
    std::optional<int> exit_code;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("reason", s.reason), v("exit_code", s.exit_code);
    }
};

using WorkerCommand = std::variant<CheckpointCommand, CheckpointAndStop>;

/// The wire form: the fields, "cmd" and "v".
Json to_json(const WorkerCommand& command);

/// Decodes a message that protocol::decode(line, error, "cmd") accepted. Returns nullopt and sets
/// *error for a command this protocol does not know.
std::optional<WorkerCommand> command_from_json(const Json& message, std::string* error);

}  // namespace smartcash::protocol
