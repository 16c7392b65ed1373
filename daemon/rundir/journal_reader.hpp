// Reading the journal (RUN_DIR/events.jsonl) back, for `history`: its last entries, oldest first.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/protocol.hpp"

namespace smartcash::daemon {

/// The last `limit` entries of the journal that are JSON objects (a torn or foreign line is
/// skipped). An absent journal is empty. Throws IoError when it exists but cannot be read.
std::vector<protocol::Json> read_journal_tail(const std::string& run_dir, std::size_t limit);

}  // namespace smartcash::daemon
