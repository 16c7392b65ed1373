#include "worker/data/synth.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "common/atomic_file.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/labels.hpp"
#include "worker/data/random.hpp"
#include "worker/data/synth_scene.hpp"

namespace smartcash::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_marker = ".synth-complete";
constexpr int k_jpeg_quality = 95;

std::string marker_text(const SynthOptions& options) {
    return fmt::format("smartcash synthetic dataset v{}\nimages: {}\nsize: {}\nseed: {}\n",
                       synth_drawing_version, options.images, options.size, options.seed);
}

std::string data_yaml(const SynthOptions& options) {
    std::string names;
    for (const auto& name : default_class_names())
        names += (names.empty() ? "'" : ", '") + name + "'";
    return fmt::format(
        "# Synthetic SmartCash banknotes: {} images of {} px, seed {}.\n"
        "train: train/images\nval: valid/images\ntest: test/images\n\nnc: {}\nnames: [{}]\n",
        options.images, options.size, options.seed, default_class_names().size(), names);
}

// Every file must reach the disk before the marker does, so that a marker found after a power
// cut vouches for complete files. Linux flushes the whole file system once (syncfs) before the
// marker; elsewhere each file is synced as it is written.
#ifdef __linux__
constexpr bool k_sync_each_file = false;
#else
constexpr bool k_sync_each_file = true;
#endif

void sync_tree(const fs::path& dir) {
#ifdef __linux__
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw IoError(dir.string(), errno, "cannot open");
    const int rc = ::syncfs(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) throw IoError(dir.string(), error, "cannot sync");
#else
    (void)dir;
#endif
}

void write_file(const fs::path& path, const void* data, std::size_t size, bool sync) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError(path.string(), errno, "cannot create");
    const char* p = static_cast<const char*>(data);
    std::size_t left = size;
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int error = n < 0 ? errno : EIO;
            ::close(fd);
            throw IoError(path.string(), error, "cannot write");
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (sync && ::fsync(fd) != 0) {
        const int error = errno;
        ::close(fd);
        throw IoError(path.string(), error, "cannot sync");
    }
    if (::close(fd) != 0) throw IoError(path.string(), errno, "cannot close");
}

void write_file(const fs::path& path, const std::string& text, bool sync) {
    write_file(path, text.data(), text.size(), sync);
}

std::string read_small_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

fs::path clean_out_path(const std::string& out) {
    fs::path path = fs::path(out).lexically_normal();
    if (path.has_filename()) return path;
    return path.parent_path();
}

// Only what this generator writes may be removed: a typo in --out must never wipe other data.
bool looks_generated(const fs::path& dir) {
    static const std::set<std::string> ours = {"data.yaml", "train", "valid", "test", k_marker};
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (!ours.count(it->path().filename().string())) return false;
    return !ec;
}

}  // namespace

bool synthetic_complete(const SynthOptions& options) {
    return read_small_file(clean_out_path(options.out) / k_marker) == marker_text(options);
}

void synthesize(const SynthOptions& options) {
    if (options.out.empty()) throw DataError("synthetic dataset: no output directory");
    if (options.images < 1)
        throw DataError(
            fmt::format("synthetic dataset: images must be at least 1 (got {})", options.images));
    if (options.size < 64 || options.size > 8192)
        throw DataError(
            fmt::format("synthetic dataset: size must be in [64, 8192] (got {})", options.size));
    if (synthetic_complete(options)) return;

    const fs::path out = clean_out_path(options.out);
    std::error_code ec;
    if (fs::exists(out, ec) && (!fs::is_directory(out, ec) || !looks_generated(out)))
        throw DataError(out.string(), 0,
                        "exists and is not a synthetic dataset; refusing to overwrite it");

    // Build beside the target and rename it into place, so a killed run leaves no half dataset
    // under the final name.
    const fs::path staging = out.parent_path() / (out.filename().string() + ".partial");
    fs::remove_all(staging);
    const int n = options.images;
    const int n_train = std::max(1, static_cast<int>(std::lround(0.8 * n)));
    const int n_valid = std::min(n - n_train, static_cast<int>(std::lround(0.1 * n)));
    const std::array<std::pair<const char*, int>, 3> splits = {
        {{"train", n_train}, {"valid", n_valid}, {"test", n - n_train - n_valid}}};
    for (const auto& split : splits) {
        fs::create_directories(staging / split.first / "images");
        fs::create_directories(staging / split.first / "labels");
    }

    const std::vector<int> jpeg_params = {cv::IMWRITE_JPEG_QUALITY, k_jpeg_quality};
    std::vector<uchar> jpeg;
    int index = 0;
    for (const auto& [split, count] : splits) {
        for (int i = 0; i < count; ++i, ++index) {
            const SceneImage g = draw_scene(options.seed, index, options.size);
            const std::string stem = fmt::format("synth_{:05d}", index);
            if (!cv::imencode(".jpg", g.image, jpeg, jpeg_params))
                throw std::runtime_error("cannot encode a synthetic image");
            write_file(staging / split / "images" / (stem + ".jpg"), jpeg.data(), jpeg.size(),
                       k_sync_each_file);
            std::string labels;
            const double s = options.size;
            for (const SceneBox& b : g.boxes) {
                const double x0 = std::clamp(b.x0, 0.0, s), x1 = std::clamp(b.x1, 0.0, s);
                const double y0 = std::clamp(b.y0, 0.0, s), y1 = std::clamp(b.y1, 0.0, s);
                if (x1 - x0 < 2.0 || y1 - y0 < 2.0) continue;  // too small to learn
                labels += fmt::format("{} {:.6f} {:.6f} {:.6f} {:.6f}\n", b.cls, (x0 + x1) / 2 / s,
                                      (y0 + y1) / 2 / s, (x1 - x0) / s, (y1 - y0) / s);
            }
            write_file(staging / split / "labels" / (stem + ".txt"), labels, k_sync_each_file);
        }
    }
    write_file(staging / "data.yaml", data_yaml(options), k_sync_each_file);
    // The marker goes last: its presence means every other file is complete.
    sync_tree(staging);
    for (const auto& split : splits) {
        fsync_directory((staging / split.first / "images").string());
        fsync_directory((staging / split.first / "labels").string());
        fsync_directory((staging / split.first).string());
    }
    write_file(staging / k_marker, marker_text(options), /*sync=*/true);
    fsync_directory(staging.string());

    if (fs::exists(out, ec)) fs::remove_all(out);
    fs::rename(staging, out);
    fsync_directory(out.parent_path().empty() ? "." : out.parent_path().string());
}

}  // namespace smartcash::data
