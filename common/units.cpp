#include "common/units.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace smartcash {
namespace {

constexpr const char* size_forms =
    "expected a byte size such as 1024, 512MiB, 1.5GiB, 100KiB or 2GB "
    "(units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)";
constexpr const char* duration_forms =
    "expected a duration such as 30s, 250ms, 5m, 2h, 1d, 1h30m, 1.5s or a bare number of seconds "
    "(units ms, s, m, h, d)";

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

/// A decimal number at the front of `s`: digits with at most one '.', at least one digit.
/// Signs and exponents are left out on purpose: sizes and durations are never negative, and
/// "1e3s" reads worse than "1000s".
struct Number {
    std::string_view text;
    bool has_fraction = false;
};

bool take_number(std::string_view& s, Number& n) {
    std::size_t i = 0;
    bool digits = false;
    bool dot = false;
    while (i < s.size()) {
        char c = s[i];
        if (std::isdigit(static_cast<unsigned char>(c))) {
            digits = true;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
        ++i;
    }
    if (!digits) return false;
    n.text = s.substr(0, i);
    n.has_fraction = dot;
    s.remove_prefix(i);
    return true;
}

std::string_view take_unit(std::string_view& s) {
    std::size_t i = 0;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(0, i);
    s.remove_prefix(i);
    return unit;
}

std::invalid_argument bad(const char* forms, std::string_view text, const char* why = nullptr) {
    std::string msg = "'" + std::string(text) + "': ";
    if (why) msg += std::string(why) + "; ";
    return std::invalid_argument(msg + forms);
}

}  // namespace

std::uint64_t parse_size(std::string_view original) {
    std::string_view s = trim(original);
    Number number;
    if (!take_number(s, number)) throw bad(size_forms, original);
    s = trim(s);
    std::string unit = lower(take_unit(s));
    if (!s.empty()) throw bad(size_forms, original);

    std::uint64_t multiplier = 0;
    if (unit.empty() || unit == "b")
        multiplier = 1;
    else if (unit == "kib")
        multiplier = 1ull << 10;
    else if (unit == "mib")
        multiplier = 1ull << 20;
    else if (unit == "gib")
        multiplier = 1ull << 30;
    else if (unit == "tib")
        multiplier = 1ull << 40;
    else if (unit == "kb")
        multiplier = 1000ull;
    else if (unit == "mb")
        multiplier = 1000ull * 1000;
    else if (unit == "gb")
        multiplier = 1000ull * 1000 * 1000;
    else if (unit == "tb")
        multiplier = 1000ull * 1000 * 1000 * 1000;
    else
        throw bad(size_forms, original, "unknown unit");

    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    if (!number.has_fraction) {
        // Whole numbers are computed exactly, so byte counts up to 2^64-1 survive.
        std::uint64_t value = 0;
        for (char c : number.text) {
            std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
            if (value > (max - digit) / 10) throw bad(size_forms, original, "too large");
            value = value * 10 + digit;
        }
        if (value != 0 && multiplier > max / value) throw bad(size_forms, original, "too large");
        return value * multiplier;
    }
    if (multiplier == 1) throw bad(size_forms, original, "a byte count must be whole");
    long double value = std::strtold(std::string(number.text).c_str(), nullptr);
    long double bytes = std::round(value * static_cast<long double>(multiplier));
    if (!(bytes < 18446744073709551616.0L)) throw bad(size_forms, original, "too large");
    return static_cast<std::uint64_t>(bytes);
}

double parse_duration_seconds(std::string_view original) {
    std::string_view s = trim(original);
    if (s.empty()) throw bad(duration_forms, original);
    double total = 0.0;
    bool first = true;
    while (!s.empty()) {
        Number number;
        if (!take_number(s, number)) throw bad(duration_forms, original);
        std::string unit = lower(take_unit(s));
        double value = std::strtod(std::string(number.text).c_str(), nullptr);
        if (unit.empty()) {
            // A bare number stands alone: "1h30" is more likely a typo than 1h30s.
            if (!first || !trim(s).empty()) throw bad(duration_forms, original);
            total = value;
        } else if (unit == "ms") {
            total += value / 1000.0;
        } else if (unit == "s") {
            total += value;
        } else if (unit == "m") {
            total += value * 60.0;
        } else if (unit == "h") {
            total += value * 3600.0;
        } else if (unit == "d") {
            total += value * 86400.0;
        } else {
            throw bad(duration_forms, original, "unknown unit");
        }
        first = false;
        s = trim(s);
    }
    if (!std::isfinite(total)) throw bad(duration_forms, original, "too large");
    return total;
}

std::string format_size(std::uint64_t bytes) {
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) return fmt::format("{} B", bytes);
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    // Step up before 1023.995 would print as "1024.00".
    while (value >= 1023.995 && unit + 1 < std::size(units)) {
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.2f} {}", value, units[unit]);
}

std::string format_size_exact(std::uint64_t bytes) {
    static const char* const units[] = {"TiB", "GiB", "MiB", "KiB"};
    static const int shifts[] = {40, 30, 20, 10};
    if (bytes == 0) return "0";
    for (std::size_t i = 0; i < std::size(units); ++i) {
        std::uint64_t unit = 1ull << shifts[i];
        if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, units[i]);
    }
    return fmt::format("{}", bytes);
}

std::string format_duration(double seconds) {
    if (std::isnan(seconds)) return "?";
    if (seconds < 0) return "-" + format_duration(-seconds);
    if (std::isinf(seconds)) return "inf";
    // Decide on the rounded value so 59.97 prints as "1m00s", not "60.0s".
    if (std::round(seconds * 10.0) < 600.0) return fmt::format("{:.1f}s", seconds);
    auto total = static_cast<std::uint64_t>(std::llround(seconds));
    if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
    return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
}

std::string format_duration_exact(double seconds) {
    auto exact = [&](const std::string& text) {
        try {
            return parse_duration_seconds(text) == seconds;
        } catch (const std::invalid_argument&) {
            return false;
        }
    };
    if (seconds >= 0 && seconds < 1e15 && std::floor(seconds) == seconds) {
        auto whole = static_cast<std::uint64_t>(seconds);
        if (whole != 0 && whole % 86400 == 0) return fmt::format("{}d", whole / 86400);
        if (whole != 0 && whole % 3600 == 0) return fmt::format("{}h", whole / 3600);
        if (whole != 0 && whole % 60 == 0) return fmt::format("{}m", whole / 60);
        return fmt::format("{}s", whole);
    }
    double ms = std::round(seconds * 1000.0);
    if (ms >= 1 && ms < 1e15) {
        std::string text = fmt::format("{}ms", static_cast<std::uint64_t>(ms));
        if (exact(text)) return text;
    }
    // Fixed notation with enough digits to read back the same double (no exponent: the
    // parser does not take one).
    for (int digits = 1; digits <= 40; ++digits) {
        std::string text = fmt::format("{:.{}f}s", seconds, digits);
        if (exact(text)) return text;
    }
    return fmt::format("{:.40f}s", seconds);
}

}  // namespace smartcash
