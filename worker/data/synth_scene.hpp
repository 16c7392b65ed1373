// Draws one synthetic photo of banknotes: Rupiah-coloured notes with their denomination text,
// sign, text and thread parts, placed and rotated on a cluttered background, then camera effects.
// A pure function of (seed, index, size). worker/data/synth.cpp writes these to a dataset.
#pragma once

#include <algorithm>
#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace smartcash::data {

/// Bumped whenever the drawing changes, so an old dataset on disk is regenerated.
inline constexpr int synth_drawing_version = 1;

/// A labelled box in pixel edge coordinates (pixel i spans [i, i + 1]).
struct SceneBox {
    int cls;
    double x0, y0, x1, y1;
    double area() const { return std::max(0.0, x1 - x0) * std::max(0.0, y1 - y0); }
};

struct SceneImage {
    cv::Mat image;  ///< BGR, size x size
    std::vector<SceneBox> boxes;
};

/// Image `index` of the dataset drawn with `seed`, `size` pixels square.
SceneImage draw_scene(std::uint64_t seed, int index, int size);

}  // namespace smartcash::data
