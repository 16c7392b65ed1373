// Draws ReportData as SVG: three panels (loss over steps, mAP over epochs, RSS over steps with each
// tier's limit over the steps it was in force), each with axes, ticks and labels, and the tier
// moves as labelled vertical lines; labels are placed where no other label or limit line is.
// Elements a reader (or a test) looks for carry a class: loss, map50, map50-95, rss,
// memory-limit, tier-move, tier-start, panel, x-tick and y-tick (with data-value).
#include "ctl/report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
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
    // Each tick mark carries its value (data-value), so that a reader of the SVG can map data
    // onto the panel as the drawn axis does.
    for (double t : nice_ticks(p.y_lo, p.y_hi, 5)) {
        svg.line(p.left(), p.y(t), p.right(), p.y(t), "stroke=\"#e5e5e5\"");
        svg.line(p.left() - 5, p.y(t), p.left(), p.y(t),
                 "class=\"y-tick\" data-value=\"" + tick_label(t) + "\" stroke=\"#333\"");
        svg.text(p.left() - 8, p.y(t) + 4, y_label(t), "text-anchor=\"end\"");
    }
    for (double t : nice_ticks(p.x_lo, p.x_hi, 8)) {
        if (integer_x && t != std::floor(t)) continue;
        svg.line(p.x(t), p.bottom(), p.x(t), p.bottom() + 5,
                 "class=\"x-tick\" data-value=\"" + tick_label(t) + "\" stroke=\"#333\"");
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

// A rectangle of the picture.
struct Box {
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// How wide `text` is drawn at `size` px, estimated on the generous side for common sans-serif
// faces (DejaVu Sans, the widest of them, included): per character class, and never under
// 0.6 em a character.
double text_width(const std::string& text, double size) {
    double em = 0;
    std::size_t characters = 0;
    for (unsigned char c : text) {
        if ((c & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte
        ++characters;
        if (std::string_view("iljI.,:;!|' ").find(static_cast<char>(c)) != std::string_view::npos)
            em += 0.34;
        else if (std::string_view("ftr()[]-").find(static_cast<char>(c)) != std::string_view::npos)
            em += 0.45;
        else if (std::string_view("mwMW@%").find(static_cast<char>(c)) != std::string_view::npos)
            em += 1.0;
        else if (std::isupper(c) || std::isdigit(c) || c >= 0x80)
            em += 0.74;
        else
            em += 0.64;
    }
    return std::max(em, 0.6 * static_cast<double>(characters)) * size;
}

// The box of a line of text whose baseline starts at (x, y), with a pixel to spare all round.
Box text_box(double x, double y, const std::string& text, double size) {
    return {x - 1, y - 0.8 * size - 1, x + text_width(text, size) + 1, y + 0.25 * size + 1};
}

// What is already drawn where labels go in one panel: a label is placed only where it fits
// inside the panel and overlaps nothing taken.
class Occupied {
  public:
    explicit Occupied(const Panel& p) : m_panel(p) {}
    bool free(const Box& b) const {
        if (b.x0 < m_panel.left() || b.x1 > m_panel.right() || b.y0 < m_panel.top ||
            b.y1 > m_panel.bottom())
            return false;
        return std::none_of(m_taken.begin(), m_taken.end(),
                            [&](const Box& t) { return t.overlaps(b); });
    }
    void take(const Box& b) { m_taken.push_back(b); }

  private:
    Panel m_panel;
    std::vector<Box> m_taken;
};

constexpr double label_size = 12;
constexpr double reason_size = 11;
constexpr double label_row = 16;  // one row of tier labels
const char* const tier_colour = "#b35900";
// A white outline under a label's letters, so that it reads where a curve passes under it.
const char* const halo = "stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"";

// A tier's name and, after it on the same line, why the job came to it (smaller).
struct TierLabel {
    std::string name, reason;
    double x = 0, y = 0;  // where the text starts
    // The reason is estimated at the name's size: a little wider than it is drawn.
    Box box() const {
        return text_box(x, y, reason.empty() ? name : name + " " + reason, label_size);
    }
    double width() const { return box().x1 - box().x0 - 2; }
};

// Puts `label` beside the vertical line at x, in the first row from the top where it fits: to
// the right of the line, else to its left. False when no row has room.
bool place_beside(TierLabel* label, double x, const Panel& p, Occupied* taken) {
    for (bool right : {true, false})
        for (double y = p.top + 14; y + 4 <= p.bottom(); y += label_row) {
            label->x = right ? x + 4 : x - 4 - label->width();
            label->y = y;
            if (taken->free(label->box())) {
                taken->take(label->box());
                return true;
            }
        }
    return false;
}

void draw_label(Svg& svg, const TierLabel& label, const std::string& cls) {
    std::string reason;
    if (!label.reason.empty())
        reason = "<tspan dx=\"4\" font-size=\"" + tick_label(reason_size) + "\">" +
                 xml_escape(label.reason) + "</tspan>";
    svg.raw("<text x=\"" + num(label.x) + "\" y=\"" + num(label.y) + "\" " +
            (cls.empty() ? "" : "class=\"" + cls + "\" ") + "fill=\"" + tier_colour + "\" " + halo +
            ">" + xml_escape(label.name) + reason + "</text>");
}

// The tier moves as vertical lines across a step panel, labelled with the tier moved to and the
// reason. Each label goes where no other label (and nothing in `taken`) is; a move whose label
// finds no room keeps its line and its tooltip.
void draw_tier_moves(Svg& svg, const Panel& p, const ReportData& d, Occupied* taken) {
    // The tier the job started at, even when it left it before a step was done.
    const std::string first = !d.tiers_used.empty() ? d.tiers_used.front()
                              : !d.steps.empty()    ? d.steps.front().tier
                                                    : std::string();
    if (!first.empty()) {
        TierLabel start{first, "", 0, 0};
        if (place_beside(&start, p.left(), p, taken)) draw_label(svg, start, "tier-start");
    }
    for (const auto& m : d.tier_moves) {
        const double x = p.x(std::clamp<double>(m.step, p.x_lo, p.x_hi));
        svg.raw("<g class=\"tier-move\" data-step=\"" + std::to_string(m.step) + "\" data-to=\"" +
                xml_escape(m.to) + "\">");
        svg.line(x, p.top, x, p.bottom(),
                 std::string("stroke=\"") + tier_colour + "\" stroke-dasharray=\"5,4\"");
        TierLabel label{m.to, "(" + m.reason + ")", 0, 0};
        if (place_beside(&label, x, p, taken)) draw_label(svg, label, "");
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
    for (const auto& s : d.tier_stretches) p.x_hi = std::max<double>(p.x_hi, s.to);
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
    Occupied taken(p);
    draw_tier_moves(svg, p, d, &taken);
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

// The stretches of steps each tier was in force: from the journal, else (a run directory without
// launches in its journal) from the tier each step was recorded at.
std::vector<TierStretch> stretches(const ReportData& d) {
    if (!d.tier_stretches.empty()) return d.tier_stretches;
    std::vector<TierStretch> out;
    for (std::size_t i = 0; i < d.steps.size(); ++i) {
        if (out.empty() || out.back().tier != d.steps[i].tier)
            out.push_back({d.steps[i].tier, i == 0 ? 0 : d.steps[i - 1].step, d.steps[i].step});
        out.back().to = d.steps[i].step;
    }
    return out;
}

void draw_memory(Svg& svg, const ReportData& d, double top) {
    Panel p = step_panel(d, top);
    const auto spans = stretches(d);
    auto limit_of = [&](const std::string& tier) -> std::optional<std::uint64_t> {
        const auto it = d.tier_limits.find(tier);
        return it == d.tier_limits.end() ? std::nullopt : std::optional<std::uint64_t>(it->second);
    };
    double max_bytes = 1;
    for (const auto& s : d.steps) max_bytes = std::max(max_bytes, static_cast<double>(s.rss));
    for (const auto& s : spans)
        if (auto limit = limit_of(s.tier))
            max_bytes = std::max(max_bytes, static_cast<double>(*limit));
    const bool gib = max_bytes >= 1024.0 * 1024 * 1024;
    const double unit = gib ? 1024.0 * 1024 * 1024 : 1024.0 * 1024;
    p.y_lo = 0;
    p.y_hi = max_bytes * 1.08 / unit;
    const std::string unit_name = gib ? "GiB" : "MiB";
    draw_axes(svg, p, "Worker memory (RSS) and the tier's limit", "optimizer step",
              "RSS (" + unit_name + ")", tick_label, true);
    if (d.steps.empty() && spans.empty()) return no_data(svg, p, "steps");

    // Each tier's limit over each stretch it was in force (at least a few pixels wide, so that a
    // tier left before its first step still shows its limit). The lines are placed first, so
    // that no label is drawn across one.
    struct Segment {
        const TierStretch* span;
        std::uint64_t limit;
        double x0, x1, y;
        std::string label;  // "" when its tier's label is at another stretch, or finds no room
        double label_x = 0, label_y = 0;
    };
    std::vector<Segment> segments;
    Occupied taken(p);
    for (const auto& s : spans) {
        const auto limit = limit_of(s.tier);
        if (!limit) continue;
        const double x0 = p.x(s.from);
        const double x1 = std::max(p.x(s.to), std::min(x0 + 6, p.right()));
        segments.push_back({&s, *limit, x0, x1, p.y(*limit / unit), "", 0, 0});
        taken.take({x0, segments.back().y - 1.5, x1, segments.back().y + 1.5});
    }
    if (!d.steps.empty()) {
        std::vector<std::pair<double, double>> points;
        for (const auto& s : d.steps) points.emplace_back(p.x(s.step), p.y(s.rss / unit));
        svg.polyline(points, "rss", "stroke=\"#ff7f0e\" stroke-width=\"1.5\"");
    }
    draw_tier_moves(svg, p, d, &taken);

    // One label per tier, beside the widest of its stretches that has room: above the line or
    // below it, at the stretch's end or its start.
    std::vector<Segment*> widest_first;
    for (auto& g : segments) widest_first.push_back(&g);
    std::stable_sort(
        widest_first.begin(), widest_first.end(),
        [](const Segment* a, const Segment* b) { return a->x1 - a->x0 > b->x1 - b->x0; });
    std::set<std::string> labelled;
    for (Segment* g : widest_first) {
        const std::string& tier = g->span->tier;
        if (labelled.count(tier)) continue;
        const std::string text = tier + " limit " + format_size(g->limit);
        const double w = text_width(text, label_size);
        for (double y : {g->y - 6, g->y + 13}) {
            for (double x : {g->x1 - 4 - w, g->x0 + 4}) {
                const Box b = text_box(x, y, text, label_size);
                if (!taken.free(b)) continue;
                taken.take(b);
                g->label = text;
                g->label_x = x;
                g->label_y = y;
                labelled.insert(tier);
                break;
            }
            if (labelled.count(tier)) break;
        }
    }
    for (const auto& g : segments) {
        const TierStretch& s = *g.span;
        svg.raw("<g class=\"memory-limit\" data-tier=\"" + xml_escape(s.tier) + "\" data-from=\"" +
                std::to_string(s.from) + "\" data-to=\"" + std::to_string(s.to) + "\">");
        svg.line(g.x0, g.y, g.x1, g.y, "stroke=\"#d62728\" stroke-dasharray=\"8,4\"");
        if (!g.label.empty())
            svg.text(g.label_x, g.label_y, g.label, std::string("fill=\"#d62728\" ") + halo);
        svg.raw("<title>" +
                xml_escape(s.tier + " limit " + format_size(g.limit) + ", steps " +
                           std::to_string(s.from) + " to " + std::to_string(s.to)) +
                "</title></g>");
    }
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
    body.raw("<g class=\"panel\" data-panel=\"loss\">");
    draw_loss(body, d, top);
    body.raw("</g>");
    top += panel_height + panel_gap;
    body.raw("<g class=\"panel\" data-panel=\"map\">");
    draw_map(body, d, top);
    body.raw("</g>");
    top += panel_height + panel_gap;
    body.raw("<g class=\"panel\" data-panel=\"memory\">");
    draw_memory(body, d, top);
    body.raw("</g>");
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
