// `smartcashctl report`: a run's picture as a self-contained SVG (or an HTML page holding it):
// a header, the loss over optimizer steps, mAP per evaluated epoch, and the worker's RSS against
// the tier's memory limit, with tier moves marked. Pure functions of ReportData: no files here.
#pragma once

#include <string>
#include <vector>

#include "ctl/report_data.hpp"

namespace smartcash::report {

/// A standalone SVG document (XML declaration and <svg> root). No external resources.
std::string render_report(const ReportData& data);

/// An HTML page with the same SVG inline.
std::string render_report_html(const ReportData& data);

/// Text for XML/HTML content and attribute values: & < > " ' escaped.
std::string xml_escape(const std::string& text);

/// Writes the report for `run_dir` to `out`: HTML when `out` ends in .html or .htm, else SVG.
/// Throws std::runtime_error naming the file that could not be read or written.
void write_report(const std::string& run_dir, const std::string& out);

/// `smartcashctl report --out FILE` for `run_dir` (args[0] is "report"): 0 written, 1 a file could
/// not be read or written (the message names it), 2 usage.
int report_command(const std::vector<std::string>& args, const std::string& run_dir);

}  // namespace smartcash::report
