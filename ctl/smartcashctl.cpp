// smartcashctl: asks the supervisor of a run directory over its control socket. No control
// logic here: every decision is the supervisor's. Each command is one function in the table in
// main(); the texts for people are in status_text.cpp, history_table.cpp and watch_view.cpp.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/control.hpp"
#include "common/live_block.hpp"
#include "common/run_dir.hpp"
#include "ctl/control_client.hpp"
#include "ctl/history_table.hpp"
#include "ctl/report.hpp"
#include "ctl/status_text.hpp"
#include "ctl/watch_view.hpp"
#include "daemon/rundir/state_file.hpp"
#include "daemon/shell/status.hpp"

namespace {

using namespace smartcash;
using protocol::Json;
namespace cmd = protocol::control_cmd;

/// smartcashctl's exit codes (docs/exit-codes.md).
namespace ctl_exit {
constexpr int ok = 0;
constexpr int refused = 1;  ///< the supervisor answered ok: false
constexpr int usage = 2;
constexpr int no_supervisor = 3;  ///< nothing answered (status: from state.json, or nothing)
}  // namespace ctl_exit

const char* const usage_text =
    "usage: smartcashctl [--run-dir DIR | --socket PATH] [-v] COMMAND\n"
    "\n"
    "commands:\n"
    "  status [--json]   the job's state, tier and device, progress, ETA, loss, mAP, memory\n"
    "                    against the tier's limit, launches (read from RUN_DIR/state.json\n"
    "                    when no supervisor is running)\n"
    "  watch             live progress (a redrawn block on a terminal, plain lines otherwise)\n"
    "                    with tier moves and memory events as they happen; -v adds step\n"
    "                    checkpoints and epoch ends\n"
    "  history [--json]  the journal as a table (time, event, tier, class, memory, step)\n"
    "  metrics           the Prometheus text exposition\n"
    "  stop              checkpoint and stop the job (the supervisor exits)\n"
    "  pause             checkpoint and stop the worker; the supervisor waits for resume\n"
    "  resume            start the worker again after pause\n"
    "  checkpoint        ask the worker for a checkpoint now\n"
    "  tier NAME         checkpoint and continue at tier NAME\n"
    "  report --out FILE a picture of the run (loss, mAP, memory, tier moves) from its files,\n"
    "                    no supervisor needed: SVG, or an HTML page when FILE ends in .html\n"
    "\n"
    "  --run-dir DIR     the run directory (default: the only one under ./runs with a\n"
    "                    supervisor, else the only one with a state.json, else .)\n"
    "  --socket PATH     the control socket itself\n"
    "\n"
    "exit status: 0 ok, 1 the supervisor refused, 2 usage, 3 no supervisor answered (status:\n"
    "printed from state.json when there is one)\n";

struct Invocation {
    std::string run_dir;
    std::string socket;
    std::vector<std::string> args;  ///< after the command's name
    bool verbose = false;
};

int usage_error(const std::string& what) {
    std::cerr << "smartcashctl: " << what << "\n" << usage_text;
    return ctl_exit::usage;
}

std::string default_run_dir() {
    std::error_code ec;
    std::vector<std::string> found;
    std::vector<std::string> finished;  // no supervisor, but a job's record
    for (const auto& entry : std::filesystem::directory_iterator("runs", ec)) {
        const std::string dir = entry.path().string();
        if (std::filesystem::exists(run_dir::socket(dir), ec))
            found.push_back(dir);
        else if (std::filesystem::exists(run_dir::state(dir), ec))
            finished.push_back(dir);
    }
    if (found.size() == 1) return found.front();
    if (found.empty() && finished.size() == 1) return finished.front();
    return ".";
}

// Only `--json` is accepted, and only where `json_allowed`; *json says whether it was given.
std::optional<int> json_flag(const Invocation& in, bool json_allowed, bool* json) {
    *json = false;
    for (const auto& a : in.args) {
        if (a == "--json" && json_allowed)
            *json = true;
        else
            return usage_error("unknown argument \"" + a + "\"");
    }
    return std::nullopt;
}

// Sends one request. nullopt: nothing answered (the reason on stderr).
std::optional<Json> ask(const Invocation& in, const protocol::ControlRequestLine& request,
                        bool quiet = false) {
    std::string error;
    auto answer = daemon::control_request(in.socket, protocol::to_json(request), &error);
    if (!answer && !quiet) std::cerr << "smartcashctl: " << error << std::endl;
    return answer;
}

bool refused(const Json& answer) {
    const auto a = protocol::control_answer_from_json(answer);
    if (a.ok) return false;
    std::cerr << "smartcashctl: " << a.error.value_or("refused") << std::endl;
    return true;
}

int run_status(const Invocation& in) {
    bool json = false;
    if (auto bad = json_flag(in, true, &json)) return *bad;
    std::string error;
    auto answer = daemon::control_request(
        in.socket, protocol::to_json(protocol::ControlRequestLine{cmd::status, {}, {}}), &error);
    int code = ctl_exit::ok;
    // A job whose supervisor has exited (done, failed, stopped) still has a status: state.json.
    if (!answer) {
        code = ctl_exit::no_supervisor;
        std::optional<daemon::StateRecord> record;
        try {
            if (!in.run_dir.empty()) record = daemon::read_state_record(in.run_dir);
        } catch (const std::exception&) {
        }
        if (!record) {
            std::cerr << "smartcashctl: " << error << std::endl;
            return code;
        }
        answer = protocol::to_json(daemon::status_view(*record, in.run_dir));
    }
    if (json) {
        std::cout << answer->dump(2) << std::endl;
        return protocol::control_answer_from_json(*answer).ok ? code : ctl_exit::refused;
    }
    if (refused(*answer)) return ctl_exit::refused;
    std::cout << ctl::status_text(protocol::status_from_json(*answer));
    return code;
}

int run_history(const Invocation& in) {
    bool json = false;
    if (auto bad = json_flag(in, true, &json)) return *bad;
    auto answer = ask(in, protocol::ControlRequestLine{cmd::history, {}, {}});
    if (!answer) return ctl_exit::no_supervisor;
    if (refused(*answer)) return ctl_exit::refused;
    const auto history = protocol::history_from_json(*answer);
    if (json) {
        for (const auto& e : history.events) std::cout << e.dump() << "\n";
        std::cout.flush();
    } else {
        std::cout << ctl::history_table(history.events) << std::flush;
    }
    return ctl_exit::ok;
}

int run_metrics(const Invocation& in) {
    bool json = false;
    if (auto bad = json_flag(in, false, &json)) return *bad;
    auto answer = ask(in, protocol::ControlRequestLine{cmd::metrics, {}, {}});
    if (!answer) return ctl_exit::no_supervisor;
    if (refused(*answer)) return ctl_exit::refused;
    std::cout << protocol::metrics_from_json(*answer).text << std::flush;
    return ctl_exit::ok;
}

int run_watch(const Invocation& in) {
    bool json = false;
    if (auto bad = json_flag(in, false, &json)) return *bad;
    ctl::WatchOptions o;
    o.terminal = ::isatty(STDOUT_FILENO) == 1;
    o.width = terminal_width(STDOUT_FILENO);
    o.verbose = in.verbose;
    return ctl::watch(in.socket, o, std::cout, ctl_exit::no_supervisor);
}

// stop, pause, resume, checkpoint, tier NAME: the answer says the job's state after.
int run_job_command(const std::string& name, const Invocation& in) {
    protocol::ControlRequestLine request{name, {}, {}};
    if (name == cmd::tier) {
        if (in.args.size() != 1) return usage_error("tier needs exactly one NAME");
        request.tier = in.args[0];
    } else if (!in.args.empty()) {
        return usage_error(name + " takes no arguments");
    }
    auto answer = ask(in, request);
    if (!answer) return ctl_exit::no_supervisor;
    if (refused(*answer)) return ctl_exit::refused;
    const auto result = protocol::control_answer_from_json(*answer);
    std::cout << name << ": ok (" << result.state.value_or("-") << ")" << std::endl;
    return ctl_exit::ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    Invocation in;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if ((args[i] == "--run-dir" || args[i] == "--socket") && i + 1 < args.size()) {
            (args[i] == "--run-dir" ? in.run_dir : in.socket) = args[i + 1];
            ++i;
        } else if (args[i] == "-v" || args[i] == "--verbose") {
            in.verbose = true;
        } else if (args[i] == "-h" || args[i] == "--help") {
            std::cout << usage_text;
            return ctl_exit::ok;
        } else {
            rest.push_back(args[i]);
        }
    }
    if (rest.empty()) return usage_error("missing command");
    if (in.run_dir.empty() && in.socket.empty()) in.run_dir = default_run_dir();
    // A report reads the run directory's files only; no supervisor needed.
    if (rest[0] == "report")
        return report::report_command(
            rest, in.run_dir.empty() ? std::filesystem::path(in.socket).parent_path().string()
                                     : in.run_dir);
    if (in.socket.empty()) in.socket = run_dir::socket(in.run_dir);
    const std::string command = rest[0];
    in.args.assign(rest.begin() + 1, rest.end());

    // One entry per command; a new command is one more line here.
    using Run = std::function<int(const Invocation&)>;
    auto job = [](const char* name) {
        return [name](const Invocation& i) { return run_job_command(name, i); };
    };
    const std::map<std::string, Run> commands = {
        {cmd::status, run_status},       {cmd::watch, run_watch},
        {cmd::history, run_history},     {cmd::metrics, run_metrics},
        {cmd::stop, job(cmd::stop)},     {cmd::pause, job(cmd::pause)},
        {cmd::resume, job(cmd::resume)}, {cmd::checkpoint, job(cmd::checkpoint)},
        {cmd::tier, job(cmd::tier)},
    };
    auto it = commands.find(command);
    if (it == commands.end()) return usage_error("unknown command \"" + command + "\"");
    return it->second(in);
}
