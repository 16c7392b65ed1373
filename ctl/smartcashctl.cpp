// smartcashctl: asks the supervisor of a run directory over its control socket. No control
// logic here: every decision is the supervisor's.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "ctl/control_client.hpp"

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

std::string text_or(const Json& j, const char* key, const std::string& fallback = "-") {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (it->is_string()) return it->get<std::string>().empty() ? fallback : it->get<std::string>();
    return it->dump();
}

void print_status(const Json& s) {
    char buf[64];
    std::cout << "state:      " << text_or(s, "state") << " (" << text_or(s, "phase") << ")\n";
    std::string tier = text_or(s, "tier");
    if (s.value("memory_limit", std::uint64_t{0}) > 0)
        tier += "  limit " + format_size(s.value("memory_limit", std::uint64_t{0}));
    std::cout << "tier:       " << tier << "  device "
              << text_or(s, "device", text_or(s, "tier_device")) << "\n";
    const auto step = s.value("step", std::int64_t{-1});
    const auto total = s.value("total_steps", std::int64_t{0});
    std::cout << "step:       " << (step >= 0 ? std::to_string(step) : "-")
              << (total > 0 ? " / " + std::to_string(total) : "") << "   epoch "
              << text_or(s, "epoch") << "\n";
    if (s.contains("loss") && s["loss"].is_number()) {
        std::snprintf(buf, sizeof buf, "%.4f", s["loss"].get<double>());
        std::cout << "loss:       " << buf << "\n";
    }
    if (s.contains("map50") && s["map50"].is_number()) {
        std::snprintf(buf, sizeof buf, "%.4f", s["map50"].get<double>());
        std::cout << "mAP@0.5:    " << buf;
        if (s.contains("map50_95") && s["map50_95"].is_number()) {
            std::snprintf(buf, sizeof buf, "%.4f", s["map50_95"].get<double>());
            std::cout << "   mAP@0.5:0.95 " << buf;
        }
        std::cout << "\n";
    }
    if (s.contains("layers_map50") && s["layers_map50"].is_object())
        for (const auto& [name, v] : s["layers_map50"].items()) {
            if (!v.is_number()) continue;
            std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
            std::cout << "  " << name << " mAP@0.5: " << buf << "\n";
        }
    if (!s.value("supervisor_running", true))
        std::cout << "supervisor: not running (from state.json)\n";
    const int pid = s.value("pid", 0);
    std::cout << "worker:     "
              << (pid > 0 ? "pid " + std::to_string(pid) : std::string("not running"));
    if (pid > 0) std::cout << "  rss " << format_size(s.value("rss", std::uint64_t{0}));
    std::cout << "  launches " << text_or(s, "launches") << "\n";
    std::cout << "checkpoint: " << text_or(s, "last_checkpoint") << "\n";
    const std::string message = text_or(s, "message", "");
    if (!message.empty()) std::cout << "message:    " << message << "\n";
}

// The status of a run whose supervisor is not running, from its state.json; nullopt when the
// directory has none.
std::optional<Json> status_from_state_file(const std::string& run_dir) {
    std::ifstream in(run_dir::state(run_dir));
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    Json st = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!st.is_object()) return std::nullopt;
    Json s{{"ok", true},
           {"supervisor_running", false},
           {"phase", "idle"},
           {"pid", 0},
           {"run_dir", run_dir}};
    for (const char* key : {"tier", "step", "total_steps", "epoch", "map50", "map50_95",
                            "layers_map50", "launches", "failures_without_progress",
                            "last_checkpoint", "last_checkpoint_step", "message", "tiers"})
        if (st.contains(key)) s[key] = st[key];
    s["state"] = st.value("status", std::string("unknown"));
    return s;
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
    if (socket.empty()) socket = run_dir::socket(run_dir);
    const std::string command = rest[0];
    bool json_out = false;
    Json request{{"cmd", command}};
    if (command == "status") {
        for (std::size_t i = 1; i < rest.size(); ++i) {
            if (rest[i] == "--json") {
                json_out = true;
            } else {
                std::cerr << "smartcashctl: unknown argument \"" << rest[i] << "\"\n" << usage_text;
                return 2;
            }
        }
    } else if (command == "tier") {
        if (rest.size() != 2) {
            std::cerr << "smartcashctl: tier needs exactly one NAME\n" << usage_text;
            return 2;
        }
        request["tier"] = rest[1];
    } else if (command == "stop" || command == "pause" || command == "resume" ||
               command == "checkpoint") {
        if (rest.size() != 1) {
            std::cerr << "smartcashctl: " << command << " takes no arguments\n" << usage_text;
            return 2;
        }
    } else {
        std::cerr << "smartcashctl: unknown command \"" << command << "\"\n" << usage_text;
        return 2;
    }
    std::string error;
    auto answer = daemon::control_request(socket, request, &error);
    // A job whose supervisor has exited (done, failed, stopped) still has a status: its state.json.
    if (!answer && command == "status" && !run_dir.empty())
        answer = status_from_state_file(run_dir);
    if (!answer) {
        std::cerr << "smartcashctl: " << error << std::endl;
        return 1;
    }
    if (json_out) {
        std::cout << answer->dump(2) << std::endl;
        return answer->value("ok", false) ? 0 : 1;
    }
    if (!answer->value("ok", false)) {
        std::cerr << "smartcashctl: " << text_or(*answer, "error", "refused") << std::endl;
        return 1;
    }
    if (command == "status")
        print_status(*answer);
    else
        std::cout << command << ": ok (" << text_or(*answer, "state") << ")" << std::endl;
    return 0;
}
