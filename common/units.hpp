// Byte sizes ("8GiB", "512MiB") and durations ("30s", "250ms") as people write them in configs
// and read them in logs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace smartcash {

/// Parses a byte size: a number with an optional unit. Binary units KiB, MiB, GiB, TiB (powers
/// of 1024), decimal units KB, MB, GB, TB (powers of 1000), B or no unit for bytes ("1024", "0").
/// Units are case-insensitive; a fraction is allowed with a unit ("1.5GiB") and rounded to the
/// nearest byte. Throws std::invalid_argument naming the accepted forms on anything else
/// (negative, empty, unknown unit, out of range).
std::uint64_t parse_size(std::string_view text);

/// Parses a duration in seconds: one or more number+unit parts ("30s", "250ms", "5m", "2h",
/// "1d", "1.5s", "1h30m"), or a bare number meaning seconds. Throws std::invalid_argument naming
/// the accepted forms on anything else (negative, empty, unknown unit, not finite).
double parse_duration_seconds(std::string_view text);

/// A human-readable size with two decimals in the largest fitting binary unit: "512 B",
/// "1.50 GiB".
std::string format_size(std::uint64_t bytes);

/// A size that parse_size() reads back exactly: the largest binary unit that divides it
/// ("12GiB", "300MiB"), or plain bytes ("1000").
std::string format_size_exact(std::uint64_t bytes);

/// A human-readable duration: "12.3s" under a minute, "3m05s" under an hour, "1h02m" above.
std::string format_duration(double seconds);

/// A duration that parse_duration_seconds() reads back to the same double: "30m", "6h", "250ms",
/// "1.5s".
std::string format_duration_exact(double seconds);

}  // namespace smartcash
