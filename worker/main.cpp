// smartcash-worker: trains the SmartCash detector at one tier, and inspects models, checkpoints
// and datasets. Run without arguments for usage.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/config.hpp"
#include "common/exit_codes.hpp"
#include "common/listen_address.hpp"
#include "worker/commands/bench.hpp"
#include "worker/commands/error_exit.hpp"
#include "worker/commands/inspect.hpp"
#include "worker/commands/train_command.hpp"
#include "worker/data/labels.hpp"
#include "worker/data/synth.hpp"
#include "worker/distributed/world_agent.hpp"

namespace {

using namespace smartcash;

const char* usage_text =
    "usage: smartcash-worker <command> [options]\n"
    "\n"
    "commands:\n"
    "  train --config FILE [--tier NAME] [--run-dir DIR] [--report-fd N --command-fd N]\n"
    "        [--pretrained FILE] [--pretrained-strict true|false]\n"
    "        train or resume (from the newest good checkpoint in DIR); default DIR runs/<config "
    "name>;\n"
    "        a fresh start loads the pretrained weights (model.pretrained), a resume never does\n"
    "  synth --out DIR [--images N] [--size PX] [--seed S]\n"
    "        write the synthetic banknote dataset (Roboflow YOLO layout)\n"
    "  eval --config FILE --checkpoint FILE [--split valid|test] [--run-dir DIR] [--json]\n"
    "  model-info (--config FILE | --backbone efficientnet_b4|cspdarknet) [--pretrained FILE] "
    "[--json]\n"
    "        parameter counts; with --pretrained, what that weights file would load\n"
    "  export --checkpoint FILE --out FILE.safetensors [--backbone-only]\n"
    "        [--naming smartcash|torchvision|timm|yolov5]\n"
    "        write a checkpoint's weights as safetensors, e.g. to start another run from\n"
    "  world-agent --rank R --world-size N --master HOST:PORT [--lost-after SECONDS]\n"
    "        [--timeout SECONDS] [--report-fd N --command-fd N]\n"
    "        the store agent of one rank's supervisor (docs/distributed.md); rank 0 serves the\n"
    "        store; without fds it reads commands on stdin and writes messages on stdout\n"
    "  checkpoint-info FILE [--json]\n"
    "  devices [--json]\n"
    "        which accelerators (CUDA, MPS) this LibTorch can use here, and why not\n"
    "  bench [--config FILE [--tier NAME]] [--backbone NAME] [--img-size PX] [--micro-batch N]\n"
    "        [--accumulate N] [--steps N] [--warmup N] [--threads N] [--width W] [--depth D]\n"
    "        [--device NAME] [--cleanup LEVEL] [--[no-]activation-checkpointing] [--backbone-only] "
    "[--channels-last] [--json]\n"
    "        time training steps (median after warm-up) and report peak memory\n"
    "  bench --checkpoint [--backbone NAME] [--checkpoint-dir DIR] [--json]\n"
    "        time writing and reading a full-size checkpoint\n";

/// Parsed "--key value" and "--flag" options plus positional arguments.
struct Args {
    std::map<std::string, std::string> values;
    std::vector<std::string> positional;
    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string get(const std::string& k, const std::string& fallback = "") const {
        auto it = values.find(k);
        return it == values.end() ? fallback : it->second;
    }
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& flags,
                const std::vector<std::string>& options) {
    Args a;
    auto contains = [](const std::vector<std::string>& v, const std::string& s) {
        for (const auto& x : v)
            if (x == s) return true;
        return false;
    };
    for (int i = first; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) == 0) {
            std::string key = arg.substr(2), value;
            if (auto eq = key.find('='); eq != std::string::npos) {
                value = key.substr(eq + 1);
                key = key.substr(0, eq);
            } else if (contains(options, key)) {
                if (i + 1 >= argc) throw UsageError("option --" + key + " needs a value");
                value = argv[++i];
            }
            if (!contains(flags, key) && !contains(options, key))
                throw UsageError("unknown option --" + key);
            a.values[key] = value;
        } else {
            a.positional.push_back(arg);
        }
    }
    return a;
}

int to_int(const std::string& text, const std::string& name) {
    char* end = nullptr;
    long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0')
        throw UsageError("--" + name + " expects an integer, got '" + text + "'");
    return static_cast<int>(v);
}

double to_seconds(const std::string& text, const std::string& name) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v > 0))
        throw UsageError("--" + name + " expects a positive number of seconds, got '" + text + "'");
    return v;
}

int dispatch(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cout << usage_text;
        return argc < 2 ? exit_code::usage : exit_code::done;
    }
    const std::string cmd = argv[1];
    if (cmd == "train") {
        auto a = parse_args(argc, argv, 2, {},
                            {"config", "tier", "run-dir", "report-fd", "command-fd", "pretrained",
                             "pretrained-strict"});
        if (!a.has("config")) throw UsageError("train needs --config FILE");
        train::TrainOptions o;
        o.config_path = a.get("config");
        o.tier = a.get("tier");
        o.run_dir = a.get("run-dir");
        if (a.has("report-fd")) o.report_fd = to_int(a.get("report-fd"), "report-fd");
        if (a.has("command-fd")) o.command_fd = to_int(a.get("command-fd"), "command-fd");
        o.pretrained = a.get("pretrained");
        if (a.has("pretrained-strict")) {
            const std::string v = a.get("pretrained-strict");
            if (v != "true" && v != "false")
                throw UsageError("--pretrained-strict expects true or false, got '" + v + "'");
            o.pretrained_strict = v == "true" ? 1 : 0;
        }
        return train::run_training(o);
    }
    if (cmd == "synth") {
        auto a = parse_args(argc, argv, 2, {}, {"out", "images", "size", "seed"});
        if (!a.has("out")) throw UsageError("synth needs --out DIR");
        data::SynthOptions o;
        o.out = a.get("out");
        if (a.has("images")) o.images = to_int(a.get("images"), "images");
        if (a.has("size")) o.size = to_int(a.get("size"), "size");
        if (a.has("seed")) o.seed = static_cast<std::uint64_t>(std::stoull(a.get("seed")));
        if (o.images < 10) throw UsageError("--images must be at least 10 (80/10/10 split)");
        if (o.size < 64) throw UsageError("--size must be at least 64");
        data::synthesize(o);
        std::cout << "wrote " << o.images << " synthetic images (" << o.size << " px, seed "
                  << o.seed << ") to " << o.out << "\n";
        return exit_code::done;
    }
    if (cmd == "world-agent") {
        auto a = parse_args(
            argc, argv, 2, {},
            {"rank", "world-size", "master", "lost-after", "timeout", "report-fd", "command-fd"});
        if (!a.has("rank") || !a.has("world-size") || !a.has("master"))
            throw UsageError("world-agent needs --rank R --world-size N --master HOST:PORT");
        if (!a.positional.empty())
            throw UsageError("world-agent takes no argument '" + a.positional.front() + "'");
        dist::AgentOptions o;
        o.rank = to_int(a.get("rank"), "rank");
        o.world_size = to_int(a.get("world-size"), "world-size");
        if (o.world_size < 1 || o.world_size > 4096)
            throw UsageError("--world-size must be 1 to 4096");
        if (o.rank < 0 || o.rank >= o.world_size)
            throw UsageError("--rank must be 0 to " + std::to_string(o.world_size - 1));
        if (!parse_host_port(a.get("master"), &o.master_host, &o.master_port))
            throw UsageError("--master expects HOST:PORT (port 1 to 65535), got '" +
                             a.get("master") + "'");
        if (a.has("lost-after")) o.lost_after_s = to_seconds(a.get("lost-after"), "lost-after");
        if (a.has("timeout")) o.timeout_s = to_seconds(a.get("timeout"), "timeout");
        if (a.has("report-fd")) o.report_fd = to_int(a.get("report-fd"), "report-fd");
        if (a.has("command-fd")) o.command_fd = to_int(a.get("command-fd"), "command-fd");
        return dist::run_world_agent(o);
    }
    if (cmd == "eval") {
        auto a = parse_args(argc, argv, 2, {"json"}, {"config", "checkpoint", "split", "run-dir"});
        if (!a.has("config") || !a.has("checkpoint"))
            throw UsageError("eval needs --config FILE --checkpoint FILE");
        return train::run_eval(a.get("config"), a.get("checkpoint"), a.get("split", "valid"),
                               a.get("run-dir"), a.has("json"));
    }
    if (cmd == "model-info") {
        auto a = parse_args(argc, argv, 2, {"json"}, {"config", "backbone", "pretrained"});
        if (a.has("config") == a.has("backbone"))
            throw UsageError("model-info needs --config FILE or --backbone NAME");
        return train::run_model_info(a.get("config"), a.get("backbone"), a.has("json"),
                                     a.get("pretrained"));
    }
    if (cmd == "export") {
        auto a = parse_args(argc, argv, 2, {"backbone-only"}, {"checkpoint", "out", "naming"});
        if (!a.has("checkpoint") || !a.has("out"))
            throw UsageError("export needs --checkpoint FILE --out FILE");
        return train::run_export(a.get("checkpoint"), a.get("out"), a.has("backbone-only"),
                                 a.get("naming", "smartcash"));
    }
    if (cmd == "checkpoint-info") {
        auto a = parse_args(argc, argv, 2, {"json"}, {});
        if (a.positional.size() != 1) throw UsageError("checkpoint-info needs one FILE");
        return train::run_checkpoint_info(a.positional[0], a.has("json"));
    }
    if (cmd == "devices") {
        auto a = parse_args(argc, argv, 2, {"json"}, {});
        if (!a.positional.empty()) throw UsageError("devices takes no arguments");
        return train::run_devices(a.has("json"));
    }
    if (cmd == "bench") {
        auto a = parse_args(
            argc, argv, 2,
            {"json", "activation-checkpointing", "no-activation-checkpointing", "backbone-only",
             "channels-last", "checkpoint"},
            {"config", "tier", "device", "backbone", "img-size", "micro-batch", "accumulate",
             "steps", "warmup", "threads", "width", "depth", "checkpoint-dir", "cleanup"});
        if (a.has("tier") && !a.has("config")) throw UsageError("bench --tier needs --config FILE");
        train::BenchOptions o =
            a.has("config") ? train::bench_options_from_config(a.get("config"), a.get("tier"))
                            : train::BenchOptions{};
        o.backbone = a.get("backbone", o.backbone);
        o.device = a.get("device", o.device);
        o.cleanup = a.get("cleanup", o.cleanup);
        if (a.has("img-size")) o.img_size = to_int(a.get("img-size"), "img-size");
        if (a.has("micro-batch")) o.micro_batch = to_int(a.get("micro-batch"), "micro-batch");
        if (a.has("accumulate")) o.accumulate = to_int(a.get("accumulate"), "accumulate");
        if (a.has("steps")) o.steps = to_int(a.get("steps"), "steps");
        if (a.has("warmup")) o.warmup = to_int(a.get("warmup"), "warmup");
        if (a.has("threads")) o.threads = to_int(a.get("threads"), "threads");
        if (a.has("width")) o.width_multiple = std::stod(a.get("width"));
        if (a.has("depth")) o.depth_multiple = std::stod(a.get("depth"));
        if (a.has("activation-checkpointing")) o.activation_checkpointing = true;
        if (a.has("no-activation-checkpointing")) o.activation_checkpointing = false;
        o.backbone_only = a.has("backbone-only");
        o.channels_last = a.has("channels-last");
        o.checkpoint = a.has("checkpoint");
        o.checkpoint_dir = a.get("checkpoint-dir");
        o.json = a.has("json");
        if (o.img_size % 32 != 0 || o.img_size < 64)
            throw UsageError("--img-size must be a multiple of 32, at least 64");
        if (o.micro_batch < 1 || o.accumulate < 1 || o.steps < 1 || o.warmup < 0 || o.threads < 1)
            throw UsageError(
                "--micro-batch, --accumulate, --steps and --threads must be >= 1, --warmup >= 0");
        return train::run_bench(o);
    }
    throw UsageError("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return dispatch(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "smartcash-worker: " << e.what() << "\n\n" << usage_text;
        return exit_code::usage;
    } catch (...) {
        const auto exit = train::error_exit(std::current_exception());
        std::cerr << "error: " << exit.message << "\n";
        return exit.code;
    }
}
