// The live progress block a person watches (`smartcashctl watch`, `smartcashd run --follow` on a
// terminal): the job's status as a few lines of bars and figures, fitted to a terminal width.
// Pure: status and width in, lines out. live_block.hpp draws it.
#pragma once

#include <string>
#include <vector>

#include "common/control.hpp"

namespace smartcash {

/// "[=====>    ]": `fraction` (clamped to 0..1) of `cells` filled (cells counts the brackets).
std::string progress_bar(double fraction, int cells);

/// The block: the tier and state; the epoch's bar; the job's bar with the ETA; loss, mAP and
/// images/s; a memory bar against the tier's limit and the device's memory. Every line fits in
/// `width` columns (plain ASCII, so a byte is a column); a figure not known yet shows as "-".
std::vector<std::string> progress_block(const protocol::StatusView& status, int width);

/// One line that sums the block up, for a log or a file (no bars): step, epoch, loss, ETA,
/// memory.
std::string progress_line(const protocol::StatusView& status);

}  // namespace smartcash
