#pragma once
// Aligned text tables for summaries printed between epochs and by `eval`.

#include <string>
#include <vector>

namespace smartcash::ui {

/// Rule characters: box drawing for terminals and UTF-8 logs, plain ASCII where those garble.
enum class TableStyle { unicode, ascii };

/// Renders `header` and `rows` as a table with a rule above, below and under the header, and
/// returns it with a trailing newline. Columns are as wide as their widest cell (counted in
/// UTF-8 code points). A column whose body cells all look numeric ("0.812", "-3", "1.2 GiB", or
/// "-" for a missing number) is right-aligned, header included; other columns are left-aligned.
/// Rows shorter than the widest row are padded with empty cells. An empty row draws a rule,
/// which separates groups of rows.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         TableStyle style = TableStyle::unicode);

/// A metric for a table cell: three decimals, "-" for NaN (a number that is not defined).
std::string format_metric(double value);

}  // namespace smartcash::ui
