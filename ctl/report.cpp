// Draws ReportData as SVG: three panels (loss over steps, mAP over epochs, RSS over steps with the
// tier's limit), each with axes, ticks and labels, and the tier moves as labelled vertical lines.
// Elements a reader (or a test) looks for carry a class: loss, map50, map50-95, rss,
// memory-limit, tier-move.
#include "ctl/report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/units.hpp"

namespace smartcash::report {

namespace {

constexpr double width = 960;
constexpr double margin_left = 80;
constexpr double margin_right = 30;
constexpr double panel_height = 240;
constexpr double panel_gap = 70;
constexpr double line_height = 18;

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

std::string fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// Tick values: 1, 2 or 5 times a power of ten, about `count` of them over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int count) {
    const double span = hi - lo;
    if (!(span > 0)) return {lo};
    const double raw = span / count;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    double step = power;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * power >= raw) {
            step = m * power;
            break;
        }
    std::vector<double> ticks;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
        ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    return ticks;
}

std::string tick_label(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// One chart area: data ranges mapped onto a rectangle of the picture.
struct Panel {
    double top = 0;
    double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
    double left() const { return margin_left; }
    double right() const { return width - margin_right; }
    double bottom() const { return top + panel_height; }
    double x(double v) const { return left() + (v - x_lo) / (x_hi - x_lo) * (right() - left()); }
    double y(double v) const { return bottom() - (v - y_lo) / (y_hi - y_lo) * panel_height; }
};

// Widens an empty range so that the mapping stays finite.
void widen(double* lo, double* hi) {
    if (!(*hi > *lo)) {
        *lo -= 0.5;
        *hi += 0.5;
    }
}

class Svg {
  public:
    void raw(const std::string& text) { m_out << text << '\n'; }
    void text(double x, double y, const std::string& content, const std::string& attrs = "") {
        m_out << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\"" << (attrs.empty() ? "" : " ")
              << attrs << ">" << xml_escape(content) << "</text>\n";
    }
    void line(double x1, double y1, double x2, double y2, const std::string& attrs) {
        m_out << "<line x1=\"" << num(x1) << "\" y1=\"" << num(y1) << "\" x2=\"" << num(x2)
              << "\" y2=\"" << num(y2) << "\" " << attrs << "/>\n";
    }
    void polyline(const std::vector<std::pair<double, double>>& points, const std::string& cls,
                  const std::string& style) {
        m_out << "<polyline class=\"" << cls << "\" fill=\"none\" " << style << " points=\"";
        for (std::size_t i = 0; i < points.size(); ++i)
            m_out << (i ? " " : "") << num(points[i].first) << "," << num(points[i].second);
        m_out << "\"/>\n";
    }
    std::string str() const { return m_out.str(); }

  private:
    std::ostringstream m_out;
};

// Frame, grid, ticks, their labels and the axis titles.
void draw_axes(Svg& svg, const Panel& p, const std::string& title, const std::string& x_title,
               const std::string& y_title, const std::function<std::string(double)>& y_label,
               bool integer_x) {
    svg.text(p.left(), p.top - 10, title, "class=\"panel-title\" font-weight=\"bold\"");
    for (double t : nice_ticks(p.y_lo, p.y_hi, 5)) {
        svg.line(p.left(), p.y(t), p.right(), p.y(t), "stroke=\"#e5e5e5\"");
        svg.line(p.left() - 5, p.y(t), p.left(), p.y(t), "stroke=\"#333\"");
        svg.text(p.left() - 8, p.y(t) + 4, y_label(t), "text-anchor=\"end\"");
    }
    for (double t : nice_ticks(p.x_lo, p.x_hi, 8)) {
        if (integer_x && t != std::floor(t)) continue;
        svg.line(p.x(t), p.bottom(), p.x(t), p.bottom() + 5, "stroke=\"#333\"");
        svg.text(p.x(t), p.bottom() + 18, tick_label(t), "text-anchor=\"middle\"");
    }
    svg.raw("<rect x=\"" + num(p.left()) + "\" y=\"" + num(p.top) + "\" width=\"" +
            num(p.right() - p.left()) + "\" height=\"" + num(panel_height) +
            "\" fill=\"none\" stroke=\"#333\"/>");
    svg.text((p.left() + p.right()) / 2, p.bottom() + 36, x_title, "text-anchor=\"middle\"");
    const double cx = 18, cy = p.top + panel_height / 2;
    svg.text(cx, cy, y_title,
             "text-anchor=\"middle\" transform=\"rotate(-90 " + num(cx) + " " + num(cy) + ")\"");
}

void no_data(Svg& svg, const Panel& p, const std::string& what) {
    svg.text((p.left() + p.right()) / 2, p.top + panel_height / 2, "no " + what + " recorded",
             "text-anchor=\"middle\" fill=\"#888\"");
}

// The tier moves as vertical lines across a step panel, labelled with the tier moved to.
void draw_tier_moves(Svg& svg, const Panel& p, const ReportData& d) {
    // The tier the job started at, even when it left it before a step was done.
    const std::string first = !d.tiers_used.empty() ? d.tiers_used.front()
                              : !d.steps.empty()    ? d.steps.front().tier
                                                    : std::string();
    if (!first.empty())
        svg.text(p.left() + 4, p.top + 14, first, "class=\"tier-start\" fill=\"#b35900\"");
    // Moves close together (a failed promotion comes back at the step it left), or close to the
    // start label, get their labels one below the other.
    double last_x = first.empty() ? -1e9 : p.left();
    int level = 0;
    for (const auto& m : d.tier_moves) {
        const double x = p.x(std::clamp<double>(m.step, p.x_lo, p.x_hi));
        level = x - last_x < 90 ? (level + 1) % 6 : 0;
        last_x = x;
        const double label_y = p.top + 14 + level * 32;
        svg.raw("<g class=\"tier-move\" data-step=\"" + std::to_string(m.step) + "\" data-to=\"" +
                xml_escape(m.to) + "\">");
        svg.line(x, p.top, x, p.bottom(), "stroke=\"#b35900\" stroke-dasharray=\"5,4\"");
        svg.text(x + 4, label_y, m.to, "fill=\"#b35900\"");
        svg.text(x + 4, label_y + 14, "(" + m.reason + ")", "fill=\"#b35900\" font-size=\"11\"");
        svg.raw("<title>" +
                xml_escape(m.from + " -> " + m.to + " at step " + std::to_string(m.step) + " (" +
                           m.reason + ")") +
                "</title></g>");
    }
}

Panel step_panel(const ReportData& d, double top) {
    Panel p;
    p.top = top;
    p.x_lo = 0;
    p.x_hi = std::max<double>(d.steps.empty() ? 1 : d.steps.back().step, 1);
    for (const auto& m : d.tier_moves) p.x_hi = std::max<double>(p.x_hi, m.step);
    return p;
}

void draw_loss(Svg& svg, const ReportData& d, double top) {
    Panel p = step_panel(d, top);
    std::vector<const StepPoint*> finite;
    for (const auto& s : d.steps)
        if (std::isfinite(s.loss)) finite.push_back(&s);
    p.y_lo = 0;
    p.y_hi = 1;
    for (const auto* s : finite) p.y_hi = std::max(p.y_hi, s->loss * 1.05);
    for (const auto* s : finite) p.y_lo = std::min(p.y_lo, s->loss);
    widen(&p.y_lo, &p.y_hi);
    draw_axes(svg, p, "Training loss", "optimizer step", "loss", tick_label, true);
    if (finite.empty()) return no_data(svg, p, "steps");
    std::vector<std::pair<double, double>> points;
    for (const auto* s : finite) points.emplace_back(p.x(s->step), p.y(s->loss));
    svg.polyline(points, "loss", "stroke=\"#1f77b4\" stroke-width=\"1.5\"");
    draw_tier_moves(svg, p, d);
}

void draw_map(Svg& svg, const ReportData& d, double top) {
    Panel p;
    p.top = top;
    p.x_lo = d.epochs.empty() ? 0 : d.epochs.front().epoch;
    p.x_hi = d.epochs.empty() ? 1 : d.epochs.back().epoch;
    widen(&p.x_lo, &p.x_hi);
    p.y_lo = 0;
    p.y_hi = 1;
    draw_axes(svg, p, "Validation mAP", "epoch", "mAP", tick_label, true);
    if (d.epochs.empty()) return no_data(svg, p, "evaluated epochs");
    std::vector<std::pair<double, double>> map50, map50_95;
    for (const auto& e : d.epochs) {
        map50.emplace_back(p.x(e.epoch), p.y(e.map50));
        if (e.map50_95) map50_95.emplace_back(p.x(e.epoch), p.y(*e.map50_95));
    }
    svg.polyline(map50, "map50", "stroke=\"#2ca02c\" stroke-width=\"1.5\"");
    if (!map50_95.empty())
        svg.polyline(map50_95, "map50-95", "stroke=\"#9467bd\" stroke-width=\"1.5\"");
    for (const auto& e : d.epochs) {
        svg.raw("<circle class=\"map50\" data-epoch=\"" + std::to_string(e.epoch) + "\" cx=\"" +
                num(p.x(e.epoch)) + "\" cy=\"" + num(p.y(e.map50)) +
                "\" r=\"3\" fill=\"#2ca02c\"><title>epoch " + std::to_string(e.epoch) +
                ": mAP@0.5 " + fixed(e.map50, 4) + "</title></circle>");
        if (e.map50_95)
            svg.raw("<circle class=\"map50-95\" data-epoch=\"" + std::to_string(e.epoch) +
                    "\" cx=\"" + num(p.x(e.epoch)) + "\" cy=\"" + num(p.y(*e.map50_95)) +
                    "\" r=\"3\" fill=\"#9467bd\"/>");
    }
    const double lx = p.right() - 150;
    svg.line(lx, p.top + 14, lx + 20, p.top + 14, "stroke=\"#2ca02c\" stroke-width=\"2\"");
    svg.text(lx + 26, p.top + 18, "mAP@0.5");
    svg.line(lx, p.top + 32, lx + 20, p.top + 32, "stroke=\"#9467bd\" stroke-width=\"2\"");
    svg.text(lx + 26, p.top + 36, "mAP@0.5:0.95");
}

void draw_memory(Svg& svg, const ReportData& d, double top) {
    Panel p = step_panel(d, top);
    double max_bytes = 1;
    for (const auto& s : d.steps) max_bytes = std::max(max_bytes, static_cast<double>(s.rss));
    for (const auto& s : d.steps)
        if (auto it = d.tier_limits.find(s.tier); it != d.tier_limits.end())
            max_bytes = std::max(max_bytes, static_cast<double>(it->second));
    const bool gib = max_bytes >= 1024.0 * 1024 * 1024;
    const double unit = gib ? 1024.0 * 1024 * 1024 : 1024.0 * 1024;
    p.y_lo = 0;
    p.y_hi = max_bytes * 1.08 / unit;
    const std::string unit_name = gib ? "GiB" : "MiB";
    draw_axes(svg, p, "Worker memory (RSS) and the tier's limit", "optimizer step",
              "RSS (" + unit_name + ")", tick_label, true);
    if (d.steps.empty()) return no_data(svg, p, "steps");
    std::vector<std::pair<double, double>> points;
    for (const auto& s : d.steps) points.emplace_back(p.x(s.step), p.y(s.rss / unit));
    // The limit of each stretch of steps at one tier, from where the stretch starts.
    for (std::size_t i = 0; i < d.steps.size();) {
        std::size_t j = i;
        while (j + 1 < d.steps.size() && d.steps[j + 1].tier == d.steps[i].tier) ++j;
        if (auto it = d.tier_limits.find(d.steps[i].tier); it != d.tier_limits.end()) {
            const double start = i == 0 ? p.x_lo : d.steps[i - 1].step;
            const double y = p.y(it->second / unit);
            const double x0 = p.x(start), x1 = p.x(d.steps[j].step);
            svg.raw("<g class=\"memory-limit\" data-tier=\"" + xml_escape(d.steps[i].tier) + "\">");
            svg.line(x0, y, x1, y, "stroke=\"#d62728\" stroke-dasharray=\"8,4\"");
            const bool wide = x1 - x0 > 160;  // else the label starts at the stretch's start
            // Below the line near the top, where the tier labels are.
            const double text_y = y - p.top < 60 ? y + 14 : y - 4;
            svg.text(wide ? x1 - 4 : x0 + 4, text_y,
                     d.steps[i].tier + " limit " + format_size(it->second),
                     std::string(wide ? "text-anchor=\"end\" " : "") + "fill=\"#d62728\"");
            svg.raw("</g>");
        }
        i = j + 1;
    }
    svg.polyline(points, "rss", "stroke=\"#ff7f0e\" stroke-width=\"1.5\"");
    draw_tier_moves(svg, p, d);
}

std::vector<std::string> header_lines(const ReportData& d) {
    std::vector<std::string> lines;
    lines.push_back("run: " + d.run_dir);
    std::string tiers;
    for (const auto& t : d.tiers_used) tiers += (tiers.empty() ? "" : " -> ") + t;
    lines.push_back("tiers used: " + (tiers.empty() ? std::string("-") : tiers) +
                    "  \u00b7  tier moves: " + std::to_string(d.tier_moves.size()));
    std::string exits;
    for (const auto& [cls, n] : d.exits_by_class)
        exits += (exits.empty() ? "" : ", ") + cls + " " + std::to_string(n);
    lines.push_back("launches: " + std::to_string(d.launches) +
                    (exits.empty() ? "" : "  \u00b7  exits by class: " + exits));
    std::string steps =
        "steps done: " + (d.steps_done() >= 0 ? std::to_string(d.steps_done()) : std::string("-"));
    if (d.total_steps > 0) steps += " / " + std::to_string(d.total_steps);
    steps += "  \u00b7  final mAP@0.5: " + (d.final_map50() ? fixed(*d.final_map50(), 4) : "-");
    steps += "  \u00b7  best mAP@0.5: " + (d.best_map50 ? fixed(*d.best_map50, 4) : "-");
    lines.push_back(steps);
    lines.push_back(
        "job: " + (d.job_end.empty()
                       ? std::string("not ended (or still running)")
                       : d.job_end + (d.job_end_message.empty() ? "" : " - " + d.job_end_message)));
    for (const auto& n : d.notes) lines.push_back("note: " + n);
    return lines;
}

std::string svg_element(const ReportData& d) {
    Svg body;
    const auto header = header_lines(d);
    double y = 30;
    body.text(20, y, "smartcash-trainer run report", "font-size=\"18\" font-weight=\"bold\"");
    y += 8;
    for (const auto& line : header) body.text(20, y += line_height, line, "class=\"header\"");
    double top = y + 50;
    draw_loss(body, d, top);
    top += panel_height + panel_gap;
    draw_map(body, d, top);
    top += panel_height + panel_gap;
    draw_memory(body, d, top);
    const double height = top + panel_height + 50;
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
           num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
           "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" "
           "height=\"100%\" fill=\"white\"/>\n" +
           body.str() + "</svg>\n";
}

bool ends_with(const std::string& s, const std::string& suffix) {
    if (s.size() < suffix.size()) return false;
    return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

}  // namespace

std::string xml_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                // Control characters other than tab and newlines are not allowed in XML 1.0.
                if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                    out += c;
        }
    }
    return out;
}

std::string render_report(const ReportData& data) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg_element(data);
}

std::string render_report_html(const ReportData& data) {
    return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
           xml_escape("smartcash-trainer report: " + data.run_dir) + "</title>\n</head>\n<body>\n" +
           svg_element(data) + "</body>\n</html>\n";
}

void write_report(const std::string& run_dir, const std::string& out) {
    const ReportData data = read_report_data(run_dir);
    const bool html = ends_with(out, ".html") || ends_with(out, ".htm");
    write_file_atomic(out, html ? render_report_html(data) : render_report(data));
}

int report_command(const std::vector<std::string>& args, const std::string& run_dir) {
    std::string out;
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--out" && i + 1 < args.size()) {
            out = args[++i];
        } else {
            std::cerr << "smartcashctl: report: unknown argument \"" << args[i] << "\"\n";
            return 2;
        }
    }
    if (out.empty()) {
        std::cerr << "smartcashctl: report needs --out FILE (.svg, or .html for a page)\n";
        return 2;
    }
    try {
        write_report(run_dir.empty() ? std::string(".") : run_dir, out);
    } catch (const std::exception& e) {
        std::cerr << "smartcashctl: report: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "report: " << out << std::endl;
    return 0;
}

}  // namespace smartcash::report
