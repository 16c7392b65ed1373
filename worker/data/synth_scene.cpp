#include "worker/data/synth_scene.hpp"

#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>

#include "worker/data/random.hpp"

namespace smartcash::data {

namespace {

constexpr double k_note_aspect = 2.1;

constexpr int k_class_sign = 14;
constexpr int k_class_text = 15;
constexpr int k_class_thread = 16;

struct Denomination {
    const char* numeral;
    std::array<int, 3> bgr;  // base colour of the series
};

// Base colours follow the real notes: 1000 grey-green, 2000 grey-blue, 5000 brown,
// 10000 purple, 20000 green, 50000 blue, 100000 red.
constexpr std::array<Denomination, 7> k_denominations = {{
    {"1000", {135, 165, 145}},
    {"2000", {180, 155, 135}},
    {"5000", {60, 105, 150}},
    {"10000", {160, 85, 130}},
    {"20000", {90, 155, 80}},
    {"50000", {185, 115, 55}},
    {"100000", {75, 70, 200}},
}};

double overlap_area(const SceneBox& a, const SceneBox& b) {
    const double w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
    const double h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0.0;
}

cv::Scalar to_scalar(const std::array<int, 3>& c) { return cv::Scalar(c[0], c[1], c[2]); }

cv::Scalar shade(const cv::Scalar& c, double factor) {
    return cv::Scalar(std::clamp(c[0] * factor, 0.0, 255.0), std::clamp(c[1] * factor, 0.0, 255.0),
                      std::clamp(c[2] * factor, 0.0, 255.0));
}

cv::Scalar mix(const cv::Scalar& a, const cv::Scalar& b, double t) {
    return cv::Scalar(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t);
}

cv::Scalar random_colour(Random& rng, int lo, int hi) {
    return cv::Scalar(rng.between(lo, hi), rng.between(lo, hi), rng.between(lo, hi));
}

/// Paints `colour` into `canvas` through an 8-bit coverage mask (anti-aliased edges blend).
void stamp(cv::Mat& canvas, const cv::Mat& mask, const cv::Scalar& colour) {
    for (int y = 0; y < canvas.rows; ++y) {
        const uchar* m = mask.ptr<uchar>(y);
        cv::Vec3b* p = canvas.ptr<cv::Vec3b>(y);
        for (int x = 0; x < canvas.cols; ++x) {
            if (!m[x]) continue;
            const int a = m[x];
            for (int c = 0; c < 3; ++c)
                p[x][c] = static_cast<uchar>(
                    (p[x][c] * (255 - a) + static_cast<int>(colour[c]) * a + 127) / 255);
        }
    }
}

/// The tight box of what a mask covers (faint anti-aliasing fringe excluded).
std::optional<cv::Rect> covered(const cv::Mat& mask) {
    cv::Mat solid;
    cv::threshold(mask, solid, 96, 255, cv::THRESH_BINARY);
    std::vector<cv::Point> points;
    cv::findNonZero(solid, points);
    if (points.empty()) return std::nullopt;
    return cv::boundingRect(points);
}

/// Draws `text` with its glyph height `height` px (or narrower to fit `max_width`), anchored at
/// the bottom-left `origin`; returns its tight box.
std::optional<cv::Rect> draw_text(cv::Mat& canvas, const std::string& text, cv::Point origin,
                                  double height, double max_width, int font,
                                  const cv::Scalar& colour, double weight) {
    int baseline = 0;
    const cv::Size unit = cv::getTextSize(text, font, 1.0, 1, &baseline);
    double scale = height / unit.height;
    scale = std::min(scale, max_width / unit.width);
    const int thickness = std::max(1, static_cast<int>(std::lround(scale * weight)));
    cv::Mat mask = cv::Mat::zeros(canvas.size(), CV_8U);
    cv::putText(mask, text, origin, font, scale, cv::Scalar(255), thickness, cv::LINE_AA);
    stamp(canvas, mask, colour);
    return covered(mask);
}

struct Note {
    cv::Mat image;                // upright, W x H
    std::vector<SceneBox> parts;  // layer_2 and layer_3 objects in note coordinates
};

Note render_note(Random& rng, int denom, int width) {
    const int height = std::max(8, static_cast<int>(std::lround(width / k_note_aspect)));
    const double w = width, h = height;
    cv::Scalar base = to_scalar(k_denominations[denom].bgr);
    for (int c = 0; c < 3; ++c) base[c] = std::clamp(base[c] + rng.between(-14, 14), 0.0, 255.0);
    const cv::Scalar dark = shade(base, 0.45);
    const cv::Scalar light = mix(base, cv::Scalar(235, 235, 235), 0.55);

    Note note;
    note.image.create(height, width, CV_8UC3);
    // Paper: the base colour brightening towards one end, as the printed notes do.
    const bool light_right = rng.chance(0.5);
    for (int y = 0; y < height; ++y) {
        cv::Vec3b* p = note.image.ptr<cv::Vec3b>(y);
        for (int x = 0; x < width; ++x) {
            const double t = light_right ? x / w : 1.0 - x / w;
            const double f = 0.88 + 0.24 * t;
            for (int c = 0; c < 3; ++c) p[x][c] = cv::saturate_cast<uchar>(base[c] * f);
        }
    }

    // Guilloche: families of thin interleaved sine lines across the paper.
    const int families = rng.between(2, 3);
    for (int f = 0; f < families; ++f) {
        const double freq = rng.uniform(1.0, 4.0);
        const double amp = rng.uniform(0.05, 0.18) * h;
        const double phase = rng.uniform(0.0, 6.283);
        const int lines = rng.between(4, 7);
        const cv::Scalar colour =
            rng.chance(0.5) ? shade(base, 0.7) : mix(base, cv::Scalar(255, 255, 255), 0.35);
        for (int l = 0; l < lines; ++l) {
            const double y_mid = h * (0.15 + 0.7 * l / std::max(1, lines - 1));
            std::vector<cv::Point> curve;
            for (int x = 0; x <= width; x += std::max(2, width / 60)) {
                const double y = y_mid + amp * std::sin(6.283 * freq * x / w + phase + l * 0.6);
                curve.emplace_back(x, static_cast<int>(std::lround(y)));
            }
            cv::polylines(note.image, curve, false, colour, 1, cv::LINE_AA);
        }
    }

    // Rosette on the left: rotated ellipses around one centre.
    const cv::Point rosette(static_cast<int>(0.22 * w), static_cast<int>(0.45 * h));
    const int petals = rng.between(6, 10);
    const cv::Size petal(std::max(2, static_cast<int>(0.13 * h)),
                         std::max(1, static_cast<int>(0.05 * h)));
    for (int i = 0; i < petals; ++i)
        cv::ellipse(note.image, rosette, petal, 180.0 * i / petals, 0, 360, shade(base, 0.62), 1,
                    cv::LINE_AA);

    // Frame.
    const int inset = std::max(1, static_cast<int>(0.03 * h));
    cv::rectangle(note.image, cv::Point(inset, inset),
                  cv::Point(width - 1 - inset, height - 1 - inset), shade(base, 0.6),
                  std::max(1, height / 45), cv::LINE_AA);

    // Portrait: a pale oval with a head-and-shoulders silhouette.
    const cv::Point face(static_cast<int>((0.76 + rng.uniform(-0.02, 0.02)) * w),
                         static_cast<int>(0.42 * h));
    cv::ellipse(note.image, face, cv::Size(static_cast<int>(0.12 * w), static_cast<int>(0.32 * h)),
                0, 0, 360, light, cv::FILLED, cv::LINE_AA);
    cv::ellipse(note.image, cv::Point(face.x, face.y + static_cast<int>(0.22 * h)),
                cv::Size(static_cast<int>(0.085 * w), static_cast<int>(0.11 * h)), 0, 180, 360,
                shade(base, 0.55), cv::FILLED, cv::LINE_AA);
    cv::ellipse(note.image, cv::Point(face.x, face.y - static_cast<int>(0.04 * h)),
                cv::Size(static_cast<int>(0.042 * w), static_cast<int>(0.13 * h)), 0, 0, 360,
                shade(base, 0.5), cv::FILLED, cv::LINE_AA);

    auto add_part = [&](int cls, const std::optional<cv::Rect>& r) {
        if (r)
            note.parts.push_back({cls, double(r->x), double(r->y), double(r->x + r->width),
                                  double(r->y + r->height)});
    };

    // Large numeral, bottom left (layer_2).
    {
        const cv::Point origin(static_cast<int>((0.06 + rng.uniform(0.0, 0.02)) * w),
                               static_cast<int>((0.87 + rng.uniform(-0.02, 0.01)) * h));
        add_part(7 + denom, draw_text(note.image, k_denominations[denom].numeral, origin, 0.26 * h,
                                      0.40 * w, cv::FONT_HERSHEY_DUPLEX, dark, 2.0));
    }

    // "BANK INDONESIA", top left (l3_text).
    {
        const cv::Point origin(static_cast<int>(0.08 * w),
                               static_cast<int>((0.2 + rng.uniform(0.0, 0.03)) * h));
        add_part(k_class_text, draw_text(note.image, "BANK INDONESIA", origin, 0.08 * h, 0.36 * w,
                                         cv::FONT_HERSHEY_SIMPLEX, shade(base, 0.35), 1.2));
    }

    // Signature squiggle under the portrait (l3_sign).
    {
        cv::Mat mask = cv::Mat::zeros(note.image.size(), CV_8U);
        const double x0 = (0.58 + rng.uniform(0.0, 0.04)) * w,
                     span = (0.18 + rng.uniform(0.0, 0.04)) * w;
        const double yc = 0.86 * h, amp = 0.06 * h;
        const double f1 = rng.uniform(2.0, 4.0), f2 = rng.uniform(5.0, 9.0),
                     ph = rng.uniform(0.0, 6.283);
        std::vector<cv::Point> stroke;
        for (int i = 0; i <= 48; ++i) {
            const double t = i / 48.0;
            const double x = x0 + span * t + 0.03 * w * std::sin(6.283 * f2 * t + ph);
            const double y =
                yc + amp * std::sin(6.283 * f1 * t + ph) * (0.6 + 0.4 * std::cos(6.283 * t));
            stroke.emplace_back(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y)));
        }
        cv::polylines(mask, stroke, false, cv::Scalar(255), std::max(1, height / 50), cv::LINE_AA);
        stamp(note.image, mask, cv::Scalar(70, 30, 20));
        add_part(k_class_sign, covered(mask));
    }

    // Security thread: a dark vertical stripe, windowed like the real one (l3_thread).
    {
        cv::Mat mask = cv::Mat::zeros(note.image.size(), CV_8U);
        const int thread_w = std::max(2, static_cast<int>(std::lround(0.024 * w)));
        const int x = static_cast<int>((0.5 + rng.uniform(-0.03, 0.03)) * w);
        const int top = static_cast<int>(0.04 * h), bottom = static_cast<int>(0.96 * h);
        const int window = std::max(3, height / 9);
        for (int y = top, k = 0; y < bottom; y += window, ++k) {
            const int y1 = std::min(bottom, y + window);
            // Exposed windows dark, embedded stretches a fainter shade.
            cv::rectangle(mask, cv::Point(x, y), cv::Point(x + thread_w - 1, y1 - 1),
                          cv::Scalar(k % 2 == 0 ? 255 : 150), cv::FILLED);
        }
        stamp(note.image, mask, cv::Scalar(40, 40, 45));
        add_part(k_class_thread, cv::Rect(x, top, thread_w, bottom - top));
    }
    return note;
}

void paint_background(cv::Mat& image, Random& rng) {
    const int size = image.cols;
    const cv::Scalar a = random_colour(rng, 30, 225), b = random_colour(rng, 30, 225);
    const double angle = rng.uniform(0.0, 6.283);
    const double dx = std::cos(angle), dy = std::sin(angle);
    for (int y = 0; y < size; ++y) {
        cv::Vec3b* p = image.ptr<cv::Vec3b>(y);
        for (int x = 0; x < size; ++x) {
            const double t =
                std::clamp(0.5 + ((x - size / 2.0) * dx + (y - size / 2.0) * dy) / size, 0.0, 1.0);
            for (int c = 0; c < 3; ++c) p[x][c] = static_cast<uchar>(a[c] + (b[c] - a[c]) * t);
        }
    }
    // Clutter: shapes a table, a bag or a hand could show; none of them note-shaped.
    const int shapes = rng.between(4, 12);
    for (int i = 0; i < shapes; ++i) {
        const cv::Scalar colour = random_colour(rng, 10, 245);
        const cv::Point p1(rng.below(size), rng.below(size)), p2(rng.below(size), rng.below(size));
        const int thickness = rng.chance(0.4) ? cv::FILLED : rng.between(1, std::max(1, size / 60));
        switch (rng.below(4)) {
            case 0:
                cv::circle(image, p1, rng.between(size / 40 + 1, size / 6), colour, thickness,
                           cv::LINE_AA);
                break;
            case 1: {
                const int side = rng.between(size / 20 + 1, size / 5);
                cv::rectangle(image, p1,
                              p1 + cv::Point(side, side + rng.between(-side / 3, side / 3)), colour,
                              thickness);
                break;
            }
            case 2:
                cv::line(image, p1, p2, colour,
                         std::max(1, thickness == cv::FILLED ? 2 : thickness), cv::LINE_AA);
                break;
            default:
                cv::ellipse(image, p1, cv::Size(rng.between(2, size / 6), rng.between(2, size / 6)),
                            rng.uniform(0.0, 180.0), 0, 360, colour, thickness, cv::LINE_AA);
        }
    }
    cv::GaussianBlur(image, image, cv::Size(5, 5), 0);
}

/// Blends the upright note into the image through rotation `angle` about its centre placed at
/// `centre`; returns the affine that maps note edge coordinates to image edge coordinates.
cv::Matx23d place_note(cv::Mat& image, const cv::Mat& note, double angle, cv::Point2d centre) {
    const cv::Point2d half(note.cols / 2.0, note.rows / 2.0);
    cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(0.f, 0.f), angle, 1.0);
    cv::Matx23d edge(m.at<double>(0, 0), m.at<double>(0, 1), 0.0, m.at<double>(1, 0),
                     m.at<double>(1, 1), 0.0);
    // Edge coordinates: rotate about the note's centre, then move it to `centre`.
    edge(0, 2) = centre.x - (edge(0, 0) * half.x + edge(0, 1) * half.y);
    edge(1, 2) = centre.y - (edge(1, 0) * half.x + edge(1, 1) * half.y);
    // warpAffine works on pixel centres: shift by half a pixel on both sides.
    cv::Matx23d pix = edge;
    pix(0, 2) += -0.5 + 0.5 * (edge(0, 0) + edge(0, 1));
    pix(1, 2) += -0.5 + 0.5 * (edge(1, 0) + edge(1, 1));

    cv::Mat warped, alpha;
    cv::warpAffine(note, warped, cv::Mat(pix), image.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    cv::Mat ones(note.size(), CV_8U, cv::Scalar(255));
    cv::warpAffine(ones, alpha, cv::Mat(pix), image.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    for (int y = 0; y < image.rows; ++y) {
        const uchar* a = alpha.ptr<uchar>(y);
        const cv::Vec3b* n = warped.ptr<cv::Vec3b>(y);
        cv::Vec3b* p = image.ptr<cv::Vec3b>(y);
        for (int x = 0; x < image.cols; ++x) {
            if (!a[x]) continue;
            for (int c = 0; c < 3; ++c)
                p[x][c] = static_cast<uchar>((p[x][c] * (255 - a[x]) + n[x][c] * a[x] + 127) / 255);
        }
    }
    return edge;
}

SceneBox transform_box(const cv::Matx23d& m, int cls, double x0, double y0, double x1, double y1) {
    SceneBox out{cls, 1e18, 1e18, -1e18, -1e18};
    for (const auto& p :
         {cv::Point2d(x0, y0), cv::Point2d(x1, y0), cv::Point2d(x0, y1), cv::Point2d(x1, y1)}) {
        const double x = m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2);
        const double y = m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2);
        out.x0 = std::min(out.x0, x), out.x1 = std::max(out.x1, x);
        out.y0 = std::min(out.y0, y), out.y1 = std::max(out.y1, y);
    }
    return out;
}

/// Camera look over the whole frame: uneven light and sensor noise, sometimes a little blur.
void finish_photo(cv::Mat& image, Random& rng) {
    const int size = image.cols;
    const double light = rng.uniform(0.85, 1.12), slope = rng.uniform(-0.15, 0.15);
    const double angle = rng.uniform(0.0, 6.283), dx = std::cos(angle), dy = std::sin(angle);
    const int noise = rng.between(2, 7);
    for (int y = 0; y < size; ++y) {
        cv::Vec3b* p = image.ptr<cv::Vec3b>(y);
        for (int x = 0; x < size; ++x) {
            const double f = light + slope * ((x - size / 2.0) * dx + (y - size / 2.0) * dy) / size;
            std::uint64_t bits = rng.next();
            for (int c = 0; c < 3; ++c) {
                // Two 10-bit uniforms summed: a cheap bell-shaped noise in [-noise, noise].
                const int u =
                    static_cast<int>(bits & 1023) + static_cast<int>((bits >> 10) & 1023) - 1023;
                bits >>= 20;
                p[x][c] = cv::saturate_cast<uchar>(p[x][c] * f + u * noise / 1023.0);
            }
        }
    }
    if (rng.chance(0.3)) cv::GaussianBlur(image, image, cv::Size(3, 3), 0);
}

}  // namespace

SceneImage draw_scene(std::uint64_t seed, int index, int size) {
    Random rng(mix_seed(seed, static_cast<std::uint64_t>(index)));
    SceneImage out;
    out.image.create(size, size, CV_8UC3);
    paint_background(out.image, rng);

    const bool two = rng.chance(0.4);
    std::vector<SceneBox> note_boxes;
    // Cycle the first note through the series so that every class is well represented.
    int denom =
        static_cast<int>((static_cast<std::uint64_t>(index) + seed) % k_denominations.size());
    for (int n = 0; n < (two ? 2 : 1); ++n) {
        if (n > 0) denom = rng.below(static_cast<int>(k_denominations.size()));
        const double frac = two ? rng.uniform(0.35, 0.5) : rng.uniform(0.35, 0.8);
        const int width = std::max(16, static_cast<int>(std::lround(frac * size)));
        const double angle = rng.uniform(-12.0, 12.0);
        const double rad = angle * 3.14159265358979 / 180.0;
        const double height = std::lround(width / k_note_aspect);
        const double bw = width * std::abs(std::cos(rad)) + height * std::abs(std::sin(rad));
        const double bh = width * std::abs(std::sin(rad)) + height * std::abs(std::cos(rad));
        const double margin = 2.0;
        bool placed = false;
        cv::Point2d centre;
        for (int attempt = 0; attempt < 30 && !placed; ++attempt) {
            centre.x =
                rng.uniform(bw / 2 + margin, std::max(bw / 2 + margin, size - bw / 2 - margin));
            centre.y =
                rng.uniform(bh / 2 + margin, std::max(bh / 2 + margin, size - bh / 2 - margin));
            const SceneBox candidate{0, centre.x - bw / 2, centre.y - bh / 2, centre.x + bw / 2,
                                     centre.y + bh / 2};
            placed = std::all_of(note_boxes.begin(), note_boxes.end(), [&](const SceneBox& other) {
                return overlap_area(candidate, other) <=
                       0.1 * std::min(candidate.area(), other.area());
            });
        }
        if (!placed) break;  // no room for a second note: this image keeps one
        const Note note = render_note(rng, denom, width);
        const cv::Matx23d m = place_note(out.image, note.image, angle, centre);
        const SceneBox note_box = transform_box(m, denom, 0, 0, note.image.cols, note.image.rows);
        // A later note covers parts of an earlier one: drop the parts it hides.
        out.boxes.erase(std::remove_if(out.boxes.begin(), out.boxes.end(),
                                       [&](const SceneBox& b) {
                                           return b.cls >= 7 &&
                                                  overlap_area(b, note_box) > 0.25 * b.area();
                                       }),
                        out.boxes.end());
        note_boxes.push_back(note_box);
        out.boxes.push_back(note_box);
        for (const auto& part : note.parts)
            out.boxes.push_back(transform_box(m, part.cls, part.x0, part.y0, part.x1, part.y1));
    }
    finish_photo(out.image, rng);
    return out;
}

}  // namespace smartcash::data
