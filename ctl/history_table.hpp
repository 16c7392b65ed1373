// `smartcashctl history`: the journal as a table for people, one row per entry: time, event,
// tier, exit class, memory peak, step. Pure: the entries in, the text out.
#pragma once

#include <string>
#include <vector>

#include "common/protocol.hpp"

namespace smartcash::ctl {

std::string history_table(const std::vector<protocol::Json>& events);

}  // namespace smartcash::ctl
