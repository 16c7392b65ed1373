// Compile-time checks of the LibTorch version the worker is built against (1.13 from Debian,
// 2.x from the PyTorch wheel or Homebrew, and whatever comes after 2.x).
#pragma once

#include <torch/version.h>

/// True when the LibTorch headers are version MAJOR.MINOR or later (also across a major bump:
/// 3.0 counts as later than 2.5).
#define SMARTCASH_TORCH_AT_LEAST(major, minor) \
    (TORCH_VERSION_MAJOR > (major) ||          \
     (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
