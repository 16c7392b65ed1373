// SHA-256 (FIPS 180-4) for checksums and fingerprints: config resume fingerprints, checkpoint
// and manifest checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace smartcash {

/// Incremental SHA-256. Feed bytes with update(); hex_digest() finishes the hash. After
/// hex_digest() the object starts over as if newly constructed.
class Sha256 {
  public:
    Sha256();

    /// Adds `size` bytes at `data` to the message.
    void update(const void* data, std::size_t size);

    /// Adds the bytes of `text` to the message.
    void update(std::string_view text) { update(text.data(), text.size()); }

    /// Finishes the message and returns the digest as 64 lower-case hex digits; then resets.
    std::string hex_digest();

    /// Finishes the message and returns the 32-byte digest; then resets.
    std::array<std::uint8_t, 32> digest();

  private:
    void reset();
    void compress(const std::uint8_t* block);

    std::array<std::uint32_t, 8> m_state;
    std::array<std::uint8_t, 64> m_block;
    std::size_t m_block_used = 0;
    std::uint64_t m_total_bytes = 0;
};

/// Hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Hex SHA-256 of a file's contents, read in chunks. Throws IoError if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace smartcash
