// Seeded random numbers whose values are fixed by this code alone. The standard distributions
// are implementation-defined, so a different standard library would change augmentations and
// the synthetic dataset; these derive values straight from the 64-bit engine.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace smartcash::data {

class Random {
  public:
    explicit Random(std::uint64_t seed) : m_engine(seed) {}

    /// Uniform in [0, 1), 53 bits.
    double uniform() { return static_cast<double>(m_engine() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [0, n); n > 0. The modulo bias is below 2^-40 for the n used here.
    int below(int n) { return static_cast<int>(m_engine() % static_cast<std::uint64_t>(n)); }
    /// Uniform integer in [lo, hi] inclusive.
    int between(int lo, int hi) { return lo + below(hi - lo + 1); }
    /// True with probability p.
    bool chance(double p) { return uniform() < p; }
    /// Standard normal (Box-Muller; one value per call keeps the stream simple).
    double normal() {
        double u1 = uniform();
        double u2 = uniform();
        return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
    }

    std::uint64_t next() { return m_engine(); }

  private:
    std::mt19937_64 m_engine;
};

/// Mixes a seed with a stream number (splitmix64 finaliser), so neighbouring indices give
/// unrelated streams.
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace smartcash::data
