// Reads a run directory's journal, metrics and frozen config into ReportData (report_data.hpp).
#include "ctl/report_data.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "common/config.hpp"
#include "common/journal_events.hpp"
#include "common/metrics_records.hpp"
#include "common/run_dir.hpp"

namespace smartcash::report {

namespace {

using namespace smartcash::protocol;

// The journal's entries in order; lines that are not JSON or not a known event are counted.
std::vector<JournalEvent> read_journal_file(const std::string& path, std::size_t* skipped) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::vector<JournalEvent> events;
    std::string text;
    while (std::getline(in, text)) {
        if (text.empty()) continue;
        const Json line = Json::parse(text, nullptr, /*allow_exceptions=*/false);
        std::string error;
        auto event = line.is_object() ? journal_event_from_json(line, &error) : std::nullopt;
        if (event)
            events.push_back(std::move(*event));
        else
            ++*skipped;
    }
    return events;
}

// Launches, exits, tier moves and the job's end, walked in journal order.
class JournalWalk {
  public:
    explicit JournalWalk(ReportData* data) : m_data(data) {}

    void operator()(const LaunchEvent& e) {
        ++m_data->launches;
        const std::int64_t from = std::max<std::int64_t>(e.resume_step, 0);
        m_launches.push_back(Stretch{{e.tier, from, from}, false, false});
        auto& used = m_data->tiers_used;
        if (std::find(used.begin(), used.end(), e.tier) == used.end()) used.push_back(e.tier);
        if (m_pending_move) {
            // The new tier starts from the checkpoint it resumes (a fresh start: step 0).
            m_pending_move->step = std::max<std::int64_t>(e.resume_step, 0);
            m_data->tier_moves.push_back(*m_pending_move);
            m_pending_move.reset();
            m_placed_move = m_data->tier_moves.size() - 1;
        } else {
            m_placed_move.reset();
        }
    }
    void operator()(const HelloEvent& e) {
        if (e.total_steps > 0) m_data->total_steps = e.total_steps;
        if (!m_launches.empty() && !m_launches.back().hello && e.resumed_step >= 0) {
            auto& s = m_launches.back();
            s.hello = true;
            s.span.from = e.resumed_step;
            s.span.to = std::max(s.span.to, e.resumed_step);
        }
        // The worker's own word on where it resumed beats the supervisor's expectation.
        if (m_placed_move && e.resumed_step >= 0)
            m_data->tier_moves[*m_placed_move].step = e.resumed_step;
        m_placed_move.reset();
    }
    void operator()(const ExitEvent& e) {
        ++m_data->exits_by_class[e.exit_class];
        if (e.step >= 0) m_last_exit_step = e.step;
        if (!m_launches.empty() && !m_launches.back().ended) {
            auto& s = m_launches.back();
            s.ended = true;
            if (e.step >= 0) s.span.to = std::max(s.span.from, e.step);
        }
    }
    void operator()(const TierMoveEvent& e) {
        finish_pending();
        m_pending_move = TierMark{m_last_exit_step, e.from, e.to, e.reason};
    }
    void operator()(const EvalEvent& e) {
        if (e.best_map50) m_data->best_map50 = e.best_map50;
    }
    void operator()(const WorkerDoneEvent& e) {
        if (e.best_map50) m_data->best_map50 = e.best_map50;
    }
    void operator()(const JobDoneEvent& e) { end(JobDoneEvent::name, e.message); }
    void operator()(const JobFailedEvent& e) { end(JobFailedEvent::name, e.message); }
    void operator()(const JobStoppedEvent& e) { end(JobStoppedEvent::name, e.message); }
    void operator()(const JobStart&) {
        m_data->job_end.clear();  // a restarted supervisor: the job goes on
        m_data->job_end_message.clear();
    }
    template <typename Other>
    void operator()(const Other&) {}

    /// A move with no launch after it (the job failed or stopped there) sits at the last exit.
    void finish_pending() {
        if (m_pending_move) m_data->tier_moves.push_back(*m_pending_move);
        m_pending_move.reset();
    }

    /// Each launch's stretch of steps, once the steps are known: a launch with no exit yet (the
    /// one training now, or one whose supervisor was killed) runs to the last step recorded at
    /// its tier. Consecutive launches at one tier make one stretch.
    void finish_stretches() {
        auto& out = m_data->tier_stretches;
        for (auto& launch : m_launches) {
            TierStretch s = launch.span;
            if (!launch.ended)
                for (const auto& step : m_data->steps)
                    if (step.tier == s.tier && step.step > s.to) s.to = step.step;
            if (!out.empty() && out.back().tier == s.tier) {
                out.back().from = std::min(out.back().from, s.from);
                out.back().to = std::max(out.back().to, s.to);
            } else {
                out.push_back(s);
            }
        }
    }

  private:
    struct Stretch {
        TierStretch span;
        bool hello = false;  // the worker said where it resumed
        bool ended = false;  // its exit is in the journal
    };
    std::vector<Stretch> m_launches;
    void end(const char* name, const std::string& message) {
        m_data->job_end = name;
        m_data->job_end_message = message;
    }
    ReportData* m_data;
    std::int64_t m_last_exit_step = 0;
    std::optional<TierMark> m_pending_move;
    std::optional<std::size_t> m_placed_move;
};

void add_metrics(ReportData* data, const std::vector<MetricsRecord>& records) {
    std::map<std::int64_t, StepPoint> steps;
    std::map<int, EpochPoint> epochs;
    for (const auto& record : records) {
        if (const auto* s = std::get_if<StepMetrics>(&record)) {
            steps[s->step] = StepPoint{s->step, s->loss, s->rss, s->tier};
        } else if (const auto* e = std::get_if<EpochMetrics>(&record)) {
            if (e->map50)
                epochs[e->epoch] = EpochPoint{e->epoch, e->step, *e->map50, e->map50_95};
            else
                epochs.erase(e->epoch);  // redone without a validation: the earlier one is stale
        }
    }
    for (auto& [step, point] : steps) data->steps.push_back(std::move(point));
    for (auto& [epoch, point] : epochs) data->epochs.push_back(point);
    if (!data->best_map50)
        for (const auto& e : data->epochs)
            if (!data->best_map50 || e.map50 > *data->best_map50) data->best_map50 = e.map50;
}

void add_tier_limits(ReportData* data) {
    const std::string path = run_dir::config(data->run_dir);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        data->notes.push_back(path + " not found: memory limits unknown");
        return;
    }
    try {
        const Config config = load_config(path);
        for (const auto& tier : config.tiers)
            if (tier.memory_limit > 0) data->tier_limits[tier.name] = tier.memory_limit;
    } catch (const std::exception& e) {
        data->notes.push_back(std::string("memory limits unknown: ") + e.what());
    }
}

std::string lines_note(const std::string& path, std::size_t skipped) {
    return path + ": skipped " + std::to_string(skipped) + " unreadable line" +
           (skipped == 1 ? "" : "s");
}

}  // namespace

ReportData read_report_data(const std::string& run_dir) {
    ReportData data;
    data.run_dir = run_dir;
    const std::string events_path = run_dir::events(run_dir);
    const std::string metrics_path = run_dir::metrics(run_dir);
    std::size_t skipped_events = 0;
    const auto events = read_journal_file(events_path, &skipped_events);
    std::size_t skipped_metrics = 0;
    const auto records = read_metrics_file(metrics_path, &skipped_metrics);
    if (skipped_events > 0) data.notes.push_back(lines_note(events_path, skipped_events));
    if (skipped_metrics > 0) data.notes.push_back(lines_note(metrics_path, skipped_metrics));

    JournalWalk walk(&data);
    for (const auto& event : events) std::visit(walk, event);
    walk.finish_pending();
    add_metrics(&data, records);
    walk.finish_stretches();
    add_tier_limits(&data);
    return data;
}

}  // namespace smartcash::report
