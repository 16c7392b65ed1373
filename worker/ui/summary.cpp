#include "worker/ui/summary.hpp"

#include <fmt/format.h>

#include "common/units.hpp"

namespace smartcash::ui {

std::string format_epoch_summary(const EpochSummary& s, TableStyle style) {
    std::string out = fmt::format(
        "epoch {}/{}  phase {}  train loss {:.4f} (box {:.4f}  obj {:.4f}  cls {:.4f})\n", s.epoch,
        s.epochs, s.phase, s.loss, s.loss_box, s.loss_obj, s.loss_cls);

    if (s.validation) {
        const eval::EvalResult& v = *s.validation;
        std::vector<std::vector<std::string>> rows;
        rows.push_back({"all", format_metric(v.map50), format_metric(v.map50_95),
                        format_metric(v.precision), format_metric(v.recall)});
        for (const eval::LayerMetrics& layer : v.layers) {
            rows.push_back({layer.name, format_metric(layer.map50), format_metric(layer.map50_95),
                            format_metric(layer.precision), format_metric(layer.recall)});
        }
        out += render_table({"val", "mAP@0.5", "mAP@0.5:0.95", "P", "R"}, rows, style);
    } else {
        out += "not validated this epoch\n";
    }

    out += fmt::format("time {}", format_duration(s.seconds));
    if (s.peak_rss > 0) {
        out += fmt::format("  peak RSS {}", format_size(s.peak_rss));
    }
    if (s.peak_device_mem > 0) {
        out += fmt::format("  peak device {}", format_size(s.peak_device_mem));
    }
    if (!s.tier.empty()) {
        out += fmt::format("  tier {}", s.tier);
    }
    if (s.best) {
        out += "  new best mAP@0.5";
    }
    out += "\n";
    return out;
}

std::string format_eval_table(const eval::EvalResult& result, TableStyle style) {
    std::vector<std::vector<std::string>> rows;
    long total_gt = 0;
    long total_det = 0;
    for (const eval::ClassMetrics& c : result.classes) {
        rows.push_back({c.name, fmt::format("{}", c.num_gt), fmt::format("{}", c.num_det),
                        format_metric(c.precision), format_metric(c.recall), format_metric(c.ap50),
                        format_metric(c.ap50_95)});
        total_gt += c.num_gt;
        total_det += c.num_det;
    }
    if (!result.layers.empty()) {
        rows.emplace_back();  // rule between classes and layers
        for (const eval::LayerMetrics& layer : result.layers) {
            rows.push_back({layer.name, "", "", format_metric(layer.precision),
                            format_metric(layer.recall), format_metric(layer.map50),
                            format_metric(layer.map50_95)});
        }
    }
    rows.emplace_back();
    rows.push_back({"all", fmt::format("{}", total_gt), fmt::format("{}", total_det),
                    format_metric(result.precision), format_metric(result.recall),
                    format_metric(result.map50), format_metric(result.map50_95)});
    return render_table({"class", "GT", "det", "P", "R", "AP@0.5", "AP@0.5:0.95"}, rows, style);
}

}  // namespace smartcash::ui
