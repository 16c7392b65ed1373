// The embedded synthetic Rupiah banknote dataset: generated on demand so that training runs on a
// fresh machine with no download.
#pragma once

#include <cstdint>
#include <string>

namespace smartcash::data {

struct SynthOptions {
    std::string out;   ///< dataset directory (Roboflow layout with data.yaml)
    int images = 240;  ///< total images, split 80/10/10 into train/valid/test
    int size = 320;    ///< square image side in pixels
    std::uint64_t seed = 7;
};

/// Writes the synthetic dataset into `options.out`: data.yaml (nc 17, SmartCash names) and
/// train/valid/test with images/ (JPEG) and labels/. The output is a pure function of the
/// options: the same seed gives byte-identical files. A complete directory made with the same
/// options is left as is; an incomplete or different one is regenerated. Prints nothing.
/// Throws DataError on bad options and std::runtime_error on I/O failures.
void synthesize(const SynthOptions& options);

/// True when `out` holds a complete dataset generated with exactly these options.
bool synthetic_complete(const SynthOptions& options);

}  // namespace smartcash::data
