// The epoch's end: validation when it is due, early stopping (close_epoch), the epoch's metrics
// line, the summary for people, the epoch checkpoint and the report that lets the supervisor
// promote at a boundary.
#include <fmt/core.h>

#include <cstdio>
#include <optional>

#include "common/units.hpp"
#include "worker/device/process_memory.hpp"
#include "worker/inference/validation.hpp"
#include "worker/train/batch.hpp"
#include "worker/train/early_stopping.hpp"
#include "worker/train/trainer.hpp"
#include "worker/ui/summary.hpp"

namespace smartcash::train {

namespace {

std::string score_text(const std::optional<double>& score) {
    return score ? fmt::format("{:.3f}", *score) : "-";
}

}  // namespace

void Trainer::end_epoch() {
    m_bar.finish();
    const auto& tc = m_config.training;
    const int epoch = m_progress.epoch;
    const int phase = phase_of(epoch);
    const int total_epochs = m_phase2_start + tc.phase2.epochs;
    protocol::EpochMetrics line;
    line.epoch = epoch;
    line.phase = phase;
    line.step = m_progress.step;
    line.loss = m_last_step.loss;
    line.box = m_last_step.box;
    line.obj = m_last_step.obj;
    line.cls = m_last_step.cls;
    line.tier = m_tier.name;
    line.skipped_steps = m_progress.skipped_steps;
    const bool last_epoch = epoch + 1 >= total_epochs;
    std::optional<eval::EvalResult> validation;
    if (tc.eval.every_epochs > 0 && ((epoch + 1) % tc.eval.every_epochs == 0 || last_epoch)) {
        try {
            validation = evaluate_split(*m_model, m_data.valid, m_data.names, m_config, m_device,
                                        m_tier.micro_batch,
                                        [this](std::size_t, std::size_t) { send_progress(false); });
        } catch (const std::bad_alloc& e) {
            handle_oom(e.what(), false);
        } catch (const c10::Error& e) {
            if (is_out_of_memory(e)) handle_oom(e.what(), false);
            throw;
        }
        line.map50 = validation->map50;
        line.map50_95 = validation->map50_95;
        line.precision = validation->precision;
        line.recall = validation->recall;
        line.layers.emplace();
        for (const auto& l : validation->layers) (*line.layers)[l.name] = {l.map50, l.map50_95};
    }
    const auto verdict =
        close_epoch(m_progress, m_phase2_start, tc.phase2.epochs, line.map50, tc.early_stopping);
    if (validation) {
        protocol::Eval eval;
        eval.epoch = epoch;
        eval.step = m_progress.step;
        eval.map50 = line.map50;
        eval.map50_95 = line.map50_95;
        eval.precision = line.precision;
        eval.recall = line.recall;
        eval.layers = line.layers;
        eval.best_map50 = m_progress.best_map50;
        report(eval);
    }
    line.seconds = std::chrono::duration<double>(Clock::now() - m_epoch_started).count();
    const auto mem = read_process_memory();
    line.peak_rss = mem.peak;
    note_device_memory();
    line.peak_device_mem = m_peak_device;
    line.peak_device_reserved = m_peak_device_reserved;
    m_progress.metrics.push_back(protocol::to_json(line));
    append_metrics(line);

    // Summary for people: a table in a terminal, one line in a log.
    if (ui::stdout_is_terminal()) {
        ui::EpochSummary summary;
        summary.epoch = epoch + 1;
        summary.epochs = total_epochs;
        summary.phase = phase;
        summary.loss = m_last_step.loss;
        summary.loss_box = m_last_step.box;
        summary.loss_obj = m_last_step.obj;
        summary.loss_cls = m_last_step.cls;
        summary.validation = validation;
        summary.seconds = line.seconds;
        summary.peak_rss = mem.peak;
        summary.peak_device_mem = m_peak_device;
        summary.tier = m_tier.name;
        summary.best = verdict.improved;
        std::fputs(ui::format_epoch_summary(summary).c_str(), stdout);
        std::fflush(stdout);
    } else {
        std::string layer_text;
        if (line.layers)
            for (const auto& [name, scores] : *line.layers)
                layer_text += fmt::format(" {} {}", name, score_text(scores.map50));
        log(
            fmt::format("epoch {}/{} phase {} | loss {:.4f} (box {:.4f} obj {:.4f} cls {:.4f}) | "
                        "mAP@0.5 {} mAP@0.5:0.95 {} |{} | {} | peak RSS {} | tier {}{}",
                        epoch + 1, total_epochs, phase, m_last_step.loss, m_last_step.box,
                        m_last_step.obj, m_last_step.cls, score_text(line.map50),
                        score_text(line.map50_95), layer_text, format_duration(line.seconds),
                        format_size(mem.peak), m_tier.name, verdict.improved ? " (best)" : ""));
    }
    if (!verdict.message.empty()) log(verdict.message);

    m_progress.order = epoch_order(m_data.train.size(), tc.seed, m_progress.epoch);
    checkpoint("epoch", false);
    report(protocol::EpochEnd{epoch, phase, m_progress.step, line.seconds, mem.peak, m_peak_device,
                              m_peak_device_reserved});
    release_memory(m_device, m_tier.cleanup);
}

}  // namespace smartcash::train
