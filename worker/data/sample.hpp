// Turning one dataset entry into a network input: decode, letterbox, optional seeded augmentation.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "common/config.hpp"
#include "worker/data/dataset.hpp"

namespace smartcash::data {

/// A network-ready image and its objects.
struct Sample {
    cv::Mat image;              ///< CV_8UC3, RGB, img_size x img_size, letterboxed
    std::vector<Label> labels;  ///< normalised to `image`
};

/// Loads entry `index` of `split`: decodes it, letterboxes it to img_size, and when `augment`
/// is not null applies augmentation driven only by `seed` (same inputs, same sample; callers
/// derive the seed from run seed, epoch and index so that resumes are exact). nullptr means
/// evaluation: no augmentation. Throws DataError "file: cannot decode image" for a bad image.
Sample load_sample(const Split& split, std::size_t index, int img_size,
                   const AugmentConfig* augment, std::uint64_t seed);

/// Resizes keeping the aspect ratio so the longer side equals `size`, then pads with grey 114
/// to a size x size square, centred. Writes the scale and the left/top padding when not null:
/// a point (x, y) of the input lands at (x * scale + pad_x, y * scale + pad_y).
cv::Mat letterbox(const cv::Mat& bgr, int size, float* scale, int* pad_x, int* pad_y);

/// Applies seeded augmentation in place to a square BGR image and its normalised labels:
/// HSV jitter, horizontal flip, small affine (rotation, scale, translation). Boxes follow the
/// geometry; boxes mostly pushed out of the image are dropped.
void augment_sample(cv::Mat& bgr, std::vector<Label>& labels, const AugmentConfig& augment,
                    std::uint64_t seed);

/// Caps the threads OpenCV uses inside one decode, resize or warp (the tier's thread budget;
/// 1 for the minimal tier). Results do not depend on it.
void set_image_threads(int threads);

}  // namespace smartcash::data
