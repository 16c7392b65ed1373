// smartcashctl: asks the supervisor of a run directory over its control socket. No control
// logic here: every decision is the supervisor's.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/control.hpp"
#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "ctl/control_client.hpp"
#include "ctl/report.hpp"
#include "daemon/rundir/state_file.hpp"
#include "daemon/shell/status.hpp"

namespace {

using namespace smartcash;
using protocol::Json;

const char* const usage_text =
    "usage: smartcashctl [--run-dir DIR | --socket PATH] COMMAND\n"
    "\n"
    "commands:\n"
    "  status [--json]   the job's state, tier, step, loss, memory and last message\n"
    "                    (read from RUN_DIR/state.json when no supervisor is running)\n"
    "  stop              checkpoint and stop the job (the supervisor exits)\n"
    "  pause             checkpoint and stop the worker; the supervisor waits for resume\n"
    "  resume            start the worker again after pause\n"
    "  checkpoint        ask the worker for a checkpoint now\n"
    "  tier NAME         checkpoint and continue at tier NAME\n"
    "  report --out FILE a picture of the run (loss, mAP, memory, tier moves) from its files,\n"
    "                    no supervisor needed: SVG, or an HTML page when FILE ends in .html\n"
    "\n"
    "  --run-dir DIR     the run directory (default: the only one under ./runs, else .)\n"
    "  --socket PATH     the control socket itself\n"
    "\n"
    "exit status: 0 ok, 1 the supervisor refused or could not be reached, 2 usage\n";

std::string default_run_dir() {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator("runs", ec))
        if (std::filesystem::exists(run_dir::socket(entry.path().string()), ec))
            found.push_back(entry.path().string());
    return found.size() == 1 ? found.front() : std::string(".");
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

std::string four_digits(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

void print_status(const protocol::StatusView& s) {
    std::cout << "state:      " << or_dash(s.state) << " (" << or_dash(s.phase) << ")\n";
    std::string tier = or_dash(s.tier);
    if (s.memory_limit.value_or(0) > 0) tier += "  limit " + format_size(*s.memory_limit);
    std::cout << "tier:       " << tier << "  device "
              << or_dash(s.device.value_or("").empty() ? s.tier_device.value_or("") : *s.device)
              << "\n";
    std::cout << "step:       " << (s.step >= 0 ? std::to_string(s.step) : "-")
              << (s.total_steps > 0 ? " / " + std::to_string(s.total_steps) : "") << "   epoch "
              << s.epoch << "\n";
    if (s.loss) std::cout << "loss:       " << four_digits(*s.loss) << "\n";
    if (s.map50) {
        std::cout << "mAP@0.5:    " << four_digits(*s.map50);
        if (s.map50_95) std::cout << "   mAP@0.5:0.95 " << four_digits(*s.map50_95);
        std::cout << "\n";
    }
    for (const auto& [name, v] : s.layers_map50)
        std::cout << "  " << name << " mAP@0.5: " << four_digits(v) << "\n";
    if (!s.supervisor_running.value_or(true))
        std::cout << "supervisor: not running (from state.json)\n";
    std::cout << "worker:     "
              << (s.pid > 0 ? "pid " + std::to_string(s.pid) : std::string("not running"));
    if (s.pid > 0) std::cout << "  rss " << format_size(s.rss.value_or(0));
    std::cout << "  launches " << s.launches << "\n";
    std::cout << "checkpoint: " << or_dash(s.last_checkpoint) << "\n";
    if (!s.message.empty()) std::cout << "message:    " << s.message << "\n";
}

// The status of a run whose supervisor is not running, from its state.json; nullopt when the
// directory has none (or it cannot be read).
std::optional<Json> status_from_state_file(const std::string& run_dir) {
    try {
        auto record = daemon::read_state_record(run_dir);
        if (!record) return std::nullopt;
        return protocol::to_json(daemon::status_view(*record, run_dir));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string run_dir, socket;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if ((args[i] == "--run-dir" || args[i] == "--socket") && i + 1 < args.size()) {
            (args[i] == "--run-dir" ? run_dir : socket) = args[i + 1];
            ++i;
        } else if (args[i] == "-h" || args[i] == "--help") {
            std::cout << usage_text;
            return 0;
        } else {
            rest.push_back(args[i]);
        }
    }
    if (rest.empty()) {
        std::cerr << "smartcashctl: missing command\n" << usage_text;
        return 2;
    }
    if (run_dir.empty() && socket.empty()) run_dir = default_run_dir();
    // A report reads the run directory's files only.
    if (rest[0] == "report")
        return report::report_command(
            rest, run_dir.empty() ? std::filesystem::path(socket).parent_path().string() : run_dir);
    if (socket.empty()) socket = run_dir::socket(run_dir);
    const std::string command = rest[0];
    bool json_out = false;
    namespace cmd = protocol::control_cmd;
    protocol::ControlRequestLine request{command, std::nullopt};
    if (command == cmd::status) {
        for (std::size_t i = 1; i < rest.size(); ++i) {
            if (rest[i] == "--json") {
                json_out = true;
            } else {
                std::cerr << "smartcashctl: unknown argument \"" << rest[i] << "\"\n" << usage_text;
                return 2;
            }
        }
    } else if (command == cmd::tier) {
        if (rest.size() != 2) {
            std::cerr << "smartcashctl: tier needs exactly one NAME\n" << usage_text;
            return 2;
        }
        request.tier = rest[1];
    } else if (command == cmd::stop || command == cmd::pause || command == cmd::resume ||
               command == cmd::checkpoint) {
        if (rest.size() != 1) {
            std::cerr << "smartcashctl: " << command << " takes no arguments\n" << usage_text;
            return 2;
        }
    } else {
        std::cerr << "smartcashctl: unknown command \"" << command << "\"\n" << usage_text;
        return 2;
    }
    std::string error;
    auto answer = daemon::control_request(socket, protocol::to_json(request), &error);
    // A job whose supervisor has exited (done, failed, stopped) still has a status: its state.json.
    if (!answer && command == cmd::status && !run_dir.empty())
        answer = status_from_state_file(run_dir);
    if (!answer) {
        std::cerr << "smartcashctl: " << error << std::endl;
        return 1;
    }
    const protocol::ControlAnswer result = protocol::control_answer_from_json(*answer);
    if (json_out) {
        std::cout << answer->dump(2) << std::endl;
        return result.ok ? 0 : 1;
    }
    if (!result.ok) {
        std::cerr << "smartcashctl: " << (result.error ? *result.error : "refused") << std::endl;
        return 1;
    }
    if (command == cmd::status)
        print_status(protocol::status_from_json(*answer));
    else
        std::cout << command << ": ok (" << or_dash(result.state.value_or("")) << ")" << std::endl;
    return 0;
}
