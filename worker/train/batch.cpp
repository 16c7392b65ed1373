#include "worker/train/batch.hpp"

#include <cstring>

namespace smartcash::train {

Batch collate(const std::vector<data::Sample>& samples) { return collate(samples, torch::kCPU); }

Batch collate(const std::vector<data::Sample>& samples, const torch::Device& device) {
    TORCH_CHECK(!samples.empty(), "collate: empty batch");
    const int size = samples.front().image.rows;
    const auto b = static_cast<std::int64_t>(samples.size());
    auto bytes = torch::empty({b, size, size, 3}, torch::kUInt8);
    std::int64_t count = 0;
    for (const auto& s : samples) count += static_cast<std::int64_t>(s.labels.size());
    auto targets = torch::empty({count, 6}, torch::kFloat32);
    auto* t = targets.data_ptr<float>();
    for (std::int64_t i = 0; i < b; ++i) {
        const auto& s = samples[static_cast<std::size_t>(i)];
        TORCH_CHECK(s.image.rows == size && s.image.cols == size && s.image.isContinuous(),
                    "collate: samples differ in size");
        std::memcpy(bytes[i].data_ptr<std::uint8_t>(), s.image.data,
                    static_cast<std::size_t>(size) * size * 3);
        for (const auto& l : s.labels) {
            *t++ = static_cast<float>(i);
            *t++ = static_cast<float>(l.cls);
            *t++ = l.cx;
            *t++ = l.cy;
            *t++ = l.w;
            *t++ = l.h;
        }
    }
    auto images =
        bytes.to(device).permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0f).contiguous();
    return {images, targets};
}

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    auto step = [](std::uint64_t x) {
        x += 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        return x ^ (x >> 31);
    };
    return step(step(step(a) ^ b) ^ c);
}

std::vector<std::int64_t> epoch_order(std::size_t n, std::uint64_t seed, int epoch) {
    std::vector<std::int64_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::int64_t>(i);
    std::uint64_t state = mix_seed(seed, 0x0DA7A0DEull, static_cast<std::uint64_t>(epoch));
    // Fisher-Yates with our own draws: std::shuffle's result differs between standard libraries.
    for (std::size_t i = n; i > 1; --i) {
        state = mix_seed(state, i);
        std::size_t j = static_cast<std::size_t>(state % i);
        std::swap(order[i - 1], order[j]);
    }
    return order;
}

}  // namespace smartcash::train
