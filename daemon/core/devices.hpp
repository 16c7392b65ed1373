// Which accelerators this machine has, found without LibTorch (the supervisor never links it).
#pragma once

#include "daemon/core/decision.hpp"

namespace smartcash::daemon {

/// CUDA: an NVIDIA driver is loaded (/dev/nvidia0 or /proc/driver/nvidia exists).
/// MPS: this is macOS on Apple silicon. The environment variable SMARTCASH_DEVICES ("cpu",
/// "cpu,cuda", ...) overrides the detection, which lets tests pretend a device is absent/present.
DevicePresence detect_devices();

}  // namespace smartcash::daemon
