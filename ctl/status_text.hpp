// `smartcashctl status` for people: the job's state, tier and device, where training is (phase,
// epoch, step of total), the ETA, loss and last mAP, memory against the tier's limit, and the
// launches with how each tier's last one ended. Pure: the status in, the text out.
#pragma once

#include <string>

#include "common/control.hpp"

namespace smartcash::ctl {

std::string status_text(const protocol::StatusView& status);

}  // namespace smartcash::ctl
