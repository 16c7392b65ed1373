#include "worker/ui/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace smartcash::ui {

namespace {

// Columns are measured in code points so box-drawing and other UTF-8 text lines up.
std::size_t display_width(const std::string& text) {
    std::size_t width = 0;
    for (const char c : text) {
        if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) {
            ++width;
        }
    }
    return width;
}

bool looks_numeric(const std::string& cell) {
    if (cell == "-") {
        return true;
    }
    std::size_t i = 0;
    if (i < cell.size() && (cell[i] == '-' || cell[i] == '+')) {
        ++i;
    }
    if (i < cell.size() && cell[i] == '.') {
        ++i;
    }
    return i < cell.size() && std::isdigit(static_cast<unsigned char>(cell[i])) != 0;
}

struct Rules {
    const char* horizontal;
    const char* vertical;
    const char* top[3];  // left, cross, right
    const char* middle[3];
    const char* bottom[3];
};

const Rules kUnicode{"─", "│", {"┌", "┬", "┐"}, {"├", "┼", "┤"}, {"└", "┴", "┘"}};
const Rules kAscii{"-", "|", {"+", "+", "+"}, {"+", "+", "+"}, {"+", "+", "+"}};

std::string repeat(const char* piece, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        out += piece;
    }
    return out;
}

}  // namespace

std::string format_metric(double value) {
    return std::isnan(value) ? std::string("-") : fmt::format("{:.3f}", value);
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, TableStyle style) {
    const Rules& r = style == TableStyle::unicode ? kUnicode : kAscii;

    std::size_t columns = header.size();
    for (const auto& row : rows) {
        columns = std::max(columns, row.size());
    }
    if (columns == 0) {
        return {};
    }
    const auto cell = [](const std::vector<std::string>& row, std::size_t c) -> const std::string& {
        static const std::string empty;
        return c < row.size() ? row[c] : empty;
    };

    std::vector<std::size_t> widths(columns, 0);
    std::vector<bool> right(columns, false);
    for (std::size_t c = 0; c < columns; ++c) {
        widths[c] = display_width(cell(header, c));
        bool any = false;
        bool numeric = true;
        for (const auto& row : rows) {
            if (row.empty()) {
                continue;  // a rule
            }
            const std::string& text = cell(row, c);
            widths[c] = std::max(widths[c], display_width(text));
            if (!text.empty()) {
                any = true;
                numeric = numeric && looks_numeric(text);
            }
        }
        right[c] = any && numeric;
    }

    const auto rule = [&](const char* const(&ends)[3]) {
        std::string line = ends[0];
        for (std::size_t c = 0; c < columns; ++c) {
            line += repeat(r.horizontal, widths[c] + 2);
            line += c + 1 < columns ? ends[1] : ends[2];
        }
        return line + "\n";
    };
    const auto line = [&](const std::vector<std::string>& row) {
        std::string out = r.vertical;
        for (std::size_t c = 0; c < columns; ++c) {
            const std::string& text = cell(row, c);
            const std::string pad(widths[c] - display_width(text), ' ');
            out += ' ';
            out += right[c] ? pad + text : text + pad;
            out += ' ';
            out += r.vertical;
        }
        return out + "\n";
    };

    std::string out = rule(r.top);
    if (!header.empty()) {
        out += line(header);
        out += rule(r.middle);
    }
    for (const auto& row : rows) {
        out += row.empty() ? rule(r.middle) : line(row);
    }
    out += rule(r.bottom);
    return out;
}

}  // namespace smartcash::ui
