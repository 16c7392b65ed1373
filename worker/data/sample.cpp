#include "worker/data/sample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "worker/data/random.hpp"

namespace smartcash::data {

namespace {

constexpr int k_pad_grey = 114;
constexpr double k_min_area_kept = 0.2;  // of the box area before clipping
constexpr double k_min_side_px = 2.0;

void hsv_jitter(cv::Mat& bgr, double gain_h, double gain_s, double gain_v) {
    if (gain_h == 1.0 && gain_s == 1.0 && gain_v == 1.0) return;
    cv::Mat hsv;
    cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
    // One lookup table per channel: 8-bit OpenCV hue runs 0..179 and wraps around.
    cv::Mat lut(1, 256, CV_8UC3);
    for (int i = 0; i < 256; ++i) {
        int h = (static_cast<int>(std::lround(i * gain_h)) % 180 + 180) % 180;
        lut.at<cv::Vec3b>(0, i) =
            cv::Vec3b(static_cast<uchar>(h), cv::saturate_cast<uchar>(i * gain_s),
                      cv::saturate_cast<uchar>(i * gain_v));
    }
    cv::LUT(hsv, lut, hsv);
    cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
}

// The letterbox fit, shared by the image and the label mapping so both use the same rounding.
struct Fit {
    double scale;
    int width, height, left, top;
};

Fit fit_into(int cols, int rows, int size) {
    Fit fit{};
    fit.scale = std::min(static_cast<double>(size) / cols, static_cast<double>(size) / rows);
    fit.width = std::clamp(static_cast<int>(std::lround(cols * fit.scale)), 1, size);
    fit.height = std::clamp(static_cast<int>(std::lround(rows * fit.scale)), 1, size);
    fit.left = (size - fit.width) / 2;
    fit.top = (size - fit.height) / 2;
    return fit;
}

}  // namespace

cv::Mat letterbox(const cv::Mat& bgr, int size, float* scale, int* pad_x, int* pad_y) {
    if (bgr.empty() || size <= 0) throw std::invalid_argument("letterbox: empty image or size");
    const Fit fit = fit_into(bgr.cols, bgr.rows, size);
    const double s = fit.scale;
    const int new_w = fit.width, new_h = fit.height, left = fit.left, top = fit.top;

    cv::Mat out(size, size, bgr.type(), cv::Scalar::all(k_pad_grey));
    cv::Mat roi = out(cv::Rect(left, top, new_w, new_h));
    if (new_w == bgr.cols && new_h == bgr.rows)
        bgr.copyTo(roi);
    else
        // Area averaging avoids aliasing when shrinking; bilinear is smoother when enlarging.
        cv::resize(bgr, roi, roi.size(), 0, 0, s < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    if (scale) *scale = static_cast<float>(s);
    if (pad_x) *pad_x = left;
    if (pad_y) *pad_y = top;
    return out;
}

void augment_sample(cv::Mat& bgr, std::vector<Label>& labels, const AugmentConfig& augment,
                    std::uint64_t seed) {
    Random rng(seed);
    // Every draw is made whatever the settings, so one knob never shifts the others' values.
    const double gain_h = 1.0 + rng.uniform(-1.0, 1.0) * augment.hsv_h;
    const double gain_s = 1.0 + rng.uniform(-1.0, 1.0) * augment.hsv_s;
    const double gain_v = 1.0 + rng.uniform(-1.0, 1.0) * augment.hsv_v;
    const bool flip = rng.uniform() < augment.flip;
    const double angle = rng.uniform(-1.0, 1.0) * augment.degrees;
    const double zoom = 1.0 + rng.uniform(-1.0, 1.0) * augment.scale;
    const double shift_x = rng.uniform(-1.0, 1.0) * augment.translate * bgr.cols;
    const double shift_y = rng.uniform(-1.0, 1.0) * augment.translate * bgr.rows;

    hsv_jitter(bgr, gain_h, gain_s, gain_v);

    if (flip) {
        cv::flip(bgr, bgr, 1);
        for (auto& label : labels) label.cx = 1.0f - label.cx;
    }

    if (angle == 0.0 && zoom == 1.0 && shift_x == 0.0 && shift_y == 0.0) return;

    const double w = bgr.cols, h = bgr.rows;
    cv::Mat m = cv::getRotationMatrix2D(
        cv::Point2f(static_cast<float>(w / 2), static_cast<float>(h / 2)), angle, zoom);
    m.at<double>(0, 2) += shift_x;
    m.at<double>(1, 2) += shift_y;
    cv::Mat warped;
    cv::warpAffine(bgr, warped, m, bgr.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                   cv::Scalar::all(k_pad_grey));
    bgr = warped;

    const double a = m.at<double>(0, 0), b = m.at<double>(0, 1), c = m.at<double>(0, 2);
    const double d = m.at<double>(1, 0), e = m.at<double>(1, 1), f = m.at<double>(1, 2);
    std::vector<Label> kept;
    kept.reserve(labels.size());
    for (const auto& label : labels) {
        const double x0 = (label.cx - label.w / 2) * w, x1 = (label.cx + label.w / 2) * w;
        const double y0 = (label.cy - label.h / 2) * h, y1 = (label.cy + label.h / 2) * h;
        const std::array<cv::Point2d, 4> corners = {cv::Point2d(x0, y0), cv::Point2d(x1, y0),
                                                    cv::Point2d(x0, y1), cv::Point2d(x1, y1)};
        double lo_x = 1e18, lo_y = 1e18, hi_x = -1e18, hi_y = -1e18;
        for (const auto& p : corners) {
            const double x = a * p.x + b * p.y + c, y = d * p.x + e * p.y + f;
            lo_x = std::min(lo_x, x), hi_x = std::max(hi_x, x);
            lo_y = std::min(lo_y, y), hi_y = std::max(hi_y, y);
        }
        const double area = (hi_x - lo_x) * (hi_y - lo_y);
        const double cx0 = std::clamp(lo_x, 0.0, w), cx1 = std::clamp(hi_x, 0.0, w);
        const double cy0 = std::clamp(lo_y, 0.0, h), cy1 = std::clamp(hi_y, 0.0, h);
        const double cw = cx1 - cx0, ch = cy1 - cy0;
        if (cw < k_min_side_px || ch < k_min_side_px) continue;
        if (area <= 0 || cw * ch < k_min_area_kept * area) continue;
        kept.push_back({label.cls, static_cast<float>((cx0 + cx1) / 2 / w),
                        static_cast<float>((cy0 + cy1) / 2 / h), static_cast<float>(cw / w),
                        static_cast<float>(ch / h)});
    }
    labels = std::move(kept);
}

Sample load_sample(const Split& split, std::size_t index, int img_size,
                   const AugmentConfig* augment, std::uint64_t seed) {
    if (index >= split.images.size())
        throw std::out_of_range(
            fmt::format("sample {} of a split of {}", index, split.images.size()));
    const std::string& path = split.images[index];
    cv::Mat bgr;
    try {
        bgr = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception&) {
        bgr.release();  // a corrupt file can make a decoder throw rather than return empty
    }
    if (bgr.empty()) throw DataError(path, 0, "cannot decode image");

    Sample sample;
    sample.image = letterbox(bgr, img_size, nullptr, nullptr, nullptr);

    // Map through the resized content's real size, which rounding can make differ from
    // cols * scale by a fraction of a pixel.
    const Fit fit = fit_into(bgr.cols, bgr.rows, img_size);
    const double content_w = fit.width, content_h = fit.height;
    const int pad_x = fit.left, pad_y = fit.top;
    const double size = img_size;
    if (index < split.labels.size()) {
        for (const auto& label : split.labels[index]) {
            sample.labels.push_back({label.cls,
                                     static_cast<float>((label.cx * content_w + pad_x) / size),
                                     static_cast<float>((label.cy * content_h + pad_y) / size),
                                     static_cast<float>(label.w * content_w / size),
                                     static_cast<float>(label.h * content_h / size)});
        }
    }

    if (augment) augment_sample(sample.image, sample.labels, *augment, seed);
    cv::cvtColor(sample.image, sample.image, cv::COLOR_BGR2RGB);
    return sample;
}

void set_image_threads(int threads) { cv::setNumThreads(std::max(1, threads)); }

}  // namespace smartcash::data
