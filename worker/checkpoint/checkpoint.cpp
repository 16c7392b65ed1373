#include "worker/checkpoint/checkpoint.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <type_traits>

#include "common/atomic_file.hpp"
#include "common/sha256.hpp"

namespace smartcash::train {

namespace {

std::string step_file(std::int64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "step-%08lld.pt", static_cast<long long>(step));
    return name;
}

std::string manifest_path_of(const std::string& pt_path) {
    return pt_path.substr(0, pt_path.size() - 3) + ".json";
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// The optimizer's per-parameter state is keyed by the tensor's implementation address; the key
// type differs between LibTorch versions (a string in 1.x, the pointer itself in 2.x).
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& p) {
    using Key = typename Map::key_type;
    if constexpr (std::is_same_v<Key, std::string>) {
        std::ostringstream ss;
        ss << static_cast<const void*>(p.unsafeGetTensorImpl());
        return ss.str();
    } else {
        return static_cast<Key>(p.unsafeGetTensorImpl());
    }
}

std::string iso_now() {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return buf;
}

}  // namespace

Json to_json(const TrainProgress& p) {
    return Json{{"epoch", p.epoch},
                {"step", p.step},
                {"step_in_epoch", p.step_in_epoch},
                {"order", p.order},
                {"best_map50", p.best_map50},
                {"best_epoch", p.best_epoch},
                {"stale_epochs", p.stale_epochs},
                {"phase_cut", p.phase_cut},
                {"skipped_steps", p.skipped_steps},
                {"nonfinite_streak", p.nonfinite_streak},
                {"finished", p.finished},
                {"finish_reason", p.finish_reason},
                {"metrics", p.metrics},
                {"tiers", p.tiers}};
}

TrainProgress progress_from_json(const Json& j) {
    TrainProgress p;
    p.epoch = j.at("epoch").get<int>();
    p.step = j.at("step").get<std::int64_t>();
    p.step_in_epoch = j.at("step_in_epoch").get<std::int64_t>();
    p.order = j.at("order").get<std::vector<std::int64_t>>();
    p.best_map50 = j.at("best_map50").get<double>();
    p.best_epoch = j.at("best_epoch").get<int>();
    p.stale_epochs = j.at("stale_epochs").get<int>();
    p.phase_cut = j.value("phase_cut", false);
    p.skipped_steps = j.value("skipped_steps", std::int64_t{0});
    p.nonfinite_streak = j.value("nonfinite_streak", 0);
    p.finished = j.at("finished").get<bool>();
    p.finish_reason = j.at("finish_reason").get<std::string>();
    p.metrics = j.at("metrics");
    p.tiers = j.at("tiers");
    return p;
}

namespace {

Json to_json(const data::SplitIdentity& s) {
    return Json{{"images", s.images}, {"files_sha256", s.files_sha256}};
}

data::SplitIdentity split_identity_from_json(const Json& j) {
    return {j.at("images").get<std::int64_t>(), j.at("files_sha256").get<std::string>()};
}

}  // namespace

std::string resume_fingerprint(const Config& config, const data::DatasetIdentity& dataset) {
    return sha256_hex(
        smartcash::resume_fingerprint(config) + "\ntrain=" + std::to_string(dataset.train.images) +
        ":" + dataset.train.files_sha256 + "\nvalid=" + std::to_string(dataset.valid.images) + ":" +
        dataset.valid.files_sha256 + "\n");
}

Json to_json(const CheckpointMeta& m) {
    Json dataset;  // null when unknown
    if (m.dataset)
        dataset = Json{{"train", to_json(m.dataset->train)}, {"valid", to_json(m.dataset->valid)}};
    return Json{{"format_version", m.format_version},
                {"dataset", dataset},
                {"kind", m.kind},
                {"phase", m.phase},
                {"progress", to_json(m.progress)},
                {"tier", m.tier},
                {"device", m.device},
                {"micro_batch", m.micro_batch},
                {"effective_batch", m.effective_batch},
                {"world_size", m.world_size},
                {"fingerprint", m.fingerprint},
                {"config_yaml", m.config_yaml},
                {"tensor_names", m.tensor_names},
                {"optimizer_entries", m.optimizer_entries},
                {"input_normalization", m.input_normalization},
                {"pretrained", m.pretrained}};
}

static CheckpointMeta meta_from_json(const Json& j) {
    CheckpointMeta m;
    m.format_version = j.at("format_version").get<int>();
    m.kind = j.at("kind").get<std::string>();
    m.phase = j.at("phase").get<int>();
    m.progress = progress_from_json(j.at("progress"));
    m.tier = j.at("tier").get<std::string>();
    m.device = j.at("device").get<std::string>();
    m.micro_batch = j.at("micro_batch").get<int>();
    m.effective_batch = j.at("effective_batch").get<int>();
    m.world_size = j.value("world_size", 1);
    m.fingerprint = j.at("fingerprint").get<std::string>();
    if (j.contains("dataset") && j.at("dataset").is_object())
        m.dataset = data::DatasetIdentity{split_identity_from_json(j.at("dataset").at("train")),
                                          split_identity_from_json(j.at("dataset").at("valid"))};
    m.config_yaml = j.at("config_yaml").get<std::string>();
    m.tensor_names = j.at("tensor_names").get<std::vector<std::string>>();
    m.optimizer_entries = j.at("optimizer_entries").get<std::vector<std::string>>();
    m.input_normalization = j.value("input_normalization", std::string("none"));
    if (j.contains("pretrained")) m.pretrained = j.at("pretrained");
    return m;
}

std::vector<std::pair<std::string, torch::Tensor>> model_tensors(model::DetectorImpl& model) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& item : model.named_parameters(/*recurse=*/true))
        out.emplace_back("param:" + item.key(), item.value());
    for (const auto& item : model.named_buffers(/*recurse=*/true))
        out.emplace_back("buffer:" + item.key(), item.value());
    return out;
}

std::string hash_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
    Sha256 h;
    for (const auto& [name, t] : tensors) {
        auto c = t.detach().to(torch::kCPU).contiguous();
        std::string header = name + "|" + std::string(c10::toString(c.scalar_type())) + "|";
        for (auto d : c.sizes()) header += std::to_string(d) + ",";
        h.update(header);
        h.update(c.data_ptr(), c.numel() * c.element_size());
    }
    return h.hex_digest();
}

std::string serialize_checkpoint(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                                 CheckpointMeta meta,
                                 const std::vector<torch::Tensor>* buffers_override) {
    torch::NoGradGuard no_grad;
    torch::serialize::OutputArchive archive;
    auto tensors = model_tensors(model);
    meta.input_normalization = model::to_string(model.input_normalization());
    meta.tensor_names.clear();
    std::size_t buffer_index = 0;
    for (auto& [name, t] : tensors) {
        torch::Tensor value = t;
        if (buffers_override && name.rfind("buffer:", 0) == 0)
            value = (*buffers_override).at(buffer_index++);
        meta.tensor_names.push_back(name);
        archive.write("model/" + name, value.detach().to(torch::kCPU).clone(), /*is_buffer=*/true);
    }
    auto& state = optimizer.state();
    const auto& groups = optimizer.param_groups();
    meta.optimizer_entries.clear();
    for (std::size_t g = 0; g < groups.size(); ++g) {
        for (std::size_t i = 0; i < groups[g].params().size(); ++i) {
            auto it = state.find(state_key(state, groups[g].params()[i]));
            if (it == state.end()) continue;
            auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
            meta.optimizer_entries.push_back(std::to_string(g) + "/" + std::to_string(i));
            const std::string prefix = "optim/" + meta.optimizer_entries.back() + "/";
            archive.write(prefix + "step", torch::tensor(static_cast<std::int64_t>(s.step())),
                          true);
            archive.write(prefix + "exp_avg", s.exp_avg().detach().to(torch::kCPU), true);
            archive.write(prefix + "exp_avg_sq", s.exp_avg_sq().detach().to(torch::kCPU), true);
        }
    }
    // Only the CPU generator is saved. The device generators (CUDA, MPS) are reseeded from the
    // step number as every step begins (seed_generators), so their state carries nothing a
    // resume needs, and leaving it out keeps a checkpoint loadable on any device.
    {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        archive.write("rng/cpu", gen.get_state(), true);
    }
    archive.write("meta", c10::IValue(to_json(meta).dump()));
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
}

LoadedCheckpoint read_checkpoint(const std::string& path, bool require_manifest) {
    std::string bytes;
    try {
        bytes = read_file(path);
    } catch (const IoError& e) {
        throw CheckpointError(e.what());
    }
    const std::string manifest_path = manifest_path_of(path);
    if (file_exists(manifest_path)) {
        Json manifest;
        try {
            manifest = Json::parse(read_file(manifest_path));
        } catch (const std::exception& e) {
            throw CheckpointError("unreadable manifest " + manifest_path + ": " + e.what());
        }
        const auto expected_size = manifest.value("size", std::int64_t{-1});
        if (expected_size >= 0 && expected_size != static_cast<std::int64_t>(bytes.size()))
            throw CheckpointError(path + ": truncated (" + std::to_string(bytes.size()) +
                                  " bytes, manifest says " + std::to_string(expected_size) + ")");
        const std::string actual = sha256_hex(bytes);
        if (actual != manifest.value("sha256", ""))
            throw CheckpointError(path + ": checksum mismatch (sha256 " + actual.substr(0, 12) +
                                  "..., manifest says " +
                                  manifest.value("sha256", "").substr(0, 12) + "...)");
    } else if (require_manifest) {
        throw CheckpointError(path + ": no manifest (interrupted write)");
    }
    LoadedCheckpoint out;
    out.path = path;
    try {
        torch::serialize::InputArchive archive;
        std::istringstream in(bytes);
        archive.load_from(in, torch::Device(torch::kCPU));
        c10::IValue meta;
        archive.read("meta", meta);
        out.meta_json = Json::parse(meta.toStringRef());
        out.meta = meta_from_json(out.meta_json);
        if (out.meta.format_version != checkpoint_format_version)
            throw CheckpointError(path + ": format version " +
                                  std::to_string(out.meta.format_version) + " (this worker reads " +
                                  std::to_string(checkpoint_format_version) + ")");
        for (const auto& name : out.meta.tensor_names) {
            torch::Tensor t;
            archive.read("model/" + name, t, /*is_buffer=*/true);
            out.model.emplace_back(name, t);
        }
        for (const auto& entry : out.meta.optimizer_entries) {
            const std::string prefix = "optim/" + entry + "/";
            torch::Tensor step, a, b;
            archive.read(prefix + "step", step, true);
            archive.read(prefix + "exp_avg", a, true);
            archive.read(prefix + "exp_avg_sq", b, true);
            out.optimizer.emplace_back(prefix + "step", step);
            out.optimizer.emplace_back(prefix + "exp_avg", a);
            out.optimizer.emplace_back(prefix + "exp_avg_sq", b);
        }
        archive.read("rng/cpu", out.rng_state, true);
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& e) {
        std::string what = e.what();
        throw CheckpointError(path + ": unreadable (" + what.substr(0, what.find('\n')) + ")");
    }
    return out;
}

void restore_checkpoint(const LoadedCheckpoint& ckpt, model::DetectorImpl& model,
                        torch::optim::AdamW& optimizer, const torch::Device& device) {
    torch::NoGradGuard no_grad;
    auto tensors = model_tensors(model);
    if (tensors.size() != ckpt.model.size())
        throw CheckpointError(ckpt.path + ": holds " + std::to_string(ckpt.model.size()) +
                              " model tensors, the model has " + std::to_string(tensors.size()));
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        auto& [name, t] = tensors[k];
        const auto& [saved_name, saved] = ckpt.model[k];
        if (name != saved_name || t.sizes() != saved.sizes())
            throw CheckpointError(ckpt.path + ": tensor " + saved_name +
                                  " does not match the model's " + name);
        t.copy_(saved);
    }
    try {
        model.set_input_normalization(
            model::input_normalization_from(ckpt.meta.input_normalization));
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(ckpt.path + ": " + e.what());
    }
    auto& state = optimizer.state();
    state.clear();
    const auto& groups = optimizer.param_groups();
    for (std::size_t k = 0; k + 2 < ckpt.optimizer.size(); k += 3) {
        const std::string& key = ckpt.optimizer[k].first;  // optim/G/I/step
        std::size_t g = 0, i = 0;
        std::sscanf(key.c_str(), "optim/%zu/%zu/", &g, &i);
        if (g >= groups.size() || i >= groups[g].params().size())
            throw CheckpointError(ckpt.path + ": optimizer state " + key + " has no parameter");
        const auto& p = groups[g].params()[i];
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(ckpt.optimizer[k].second.item<std::int64_t>());
        s->exp_avg(ckpt.optimizer[k + 1].second.to(device).clone());
        s->exp_avg_sq(ckpt.optimizer[k + 2].second.to(device).clone());
        state[state_key(state, p)] = std::move(s);
    }
    if (ckpt.rng_state.defined()) {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(ckpt.rng_state);
    }
}

CheckpointStore::CheckpointStore(std::string dir, int keep)
    : m_dir(std::move(dir)), m_keep(std::max(1, keep)) {
    make_directories(m_dir);
}

Json CheckpointStore::manifest_for(const std::string& file, const std::string& bytes,
                                   const CheckpointMeta& meta) const {
    return Json{{"file", file},
                {"sha256", sha256_hex(bytes)},
                {"size", bytes.size()},
                {"step", meta.progress.step},
                {"epoch", meta.progress.epoch},
                {"phase", meta.phase},
                {"kind", meta.kind},
                {"tier", meta.tier},
                {"world_size", meta.world_size},
                {"format_version", meta.format_version},
                {"written", iso_now()}};
}

CheckpointStore::Saved CheckpointStore::save(const std::string& bytes, const CheckpointMeta& meta) {
    const std::string file = step_file(meta.progress.step);
    const std::string path = m_dir + "/" + file;
    Json manifest = manifest_for(file, bytes, meta);
    write_file_atomic(path, bytes);
    // Test hook: widen the window in which the .pt is in place but its manifest is not, so a test
    // can kill the worker mid-save for certain.
    if (const char* ms = std::getenv("SMARTCASH_TEST_SLOW_CHECKPOINT_MS"))
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(ms)));
    write_file_atomic(manifest_path_of(path), manifest.dump(2) + "\n");
    write_file_atomic(m_dir + "/latest.json", manifest.dump(2) + "\n");
    m_rejected.erase(path);  // replaced by a good one
    prune(path);
    return {path, manifest["sha256"].get<std::string>(), meta.progress.step};
}

void CheckpointStore::save_best(const std::string& bytes, const CheckpointMeta& meta) {
    Json manifest = manifest_for("best.pt", bytes, meta);
    write_file_atomic(m_dir + "/best.pt", bytes);
    write_file_atomic(m_dir + "/best.json", manifest.dump(2) + "\n");
}

namespace {
/// Step checkpoint files in the directory, newest step first.
std::vector<std::pair<std::int64_t, std::string>> list_step_files(const std::string& dir) {
    std::vector<std::pair<std::int64_t, std::string>> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        long long step = 0;
        char tail[8] = {0};
        if (std::sscanf(e->d_name, "step-%lld.%3s", &step, tail) == 2 && std::string(tail) == "pt")
            out.emplace_back(step, dir + "/" + e->d_name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    return out;
}
}  // namespace

std::vector<std::string> CheckpointStore::remove_interrupted_writes() const {
    // write_file_atomic names its temp files ".<name>.tmp.<pid>.<n>"; one left behind is a write
    // that a kill interrupted. Only one worker writes a run directory, so none is in progress.
    std::vector<std::string> removed;
    DIR* d = ::opendir(m_dir.c_str());
    if (!d) return removed;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos)
            removed.push_back(name);
    }
    ::closedir(d);
    for (const auto& name : removed) std::remove((m_dir + "/" + name).c_str());
    return removed;
}

void CheckpointStore::prune(const std::string& written) const {
    // Newest first, the one just written counted first whatever its step: a higher step number
    // on disk can only be a file found bad at start-up, never a reason to delete a good one.
    std::size_t kept = 1;
    for (const auto& [step, path] : list_step_files(m_dir)) {
        if (path == written || m_rejected.count(path)) continue;
        if (kept < static_cast<std::size_t>(m_keep)) {
            ++kept;
            continue;
        }
        std::remove(manifest_path_of(path).c_str());
        std::remove(path.c_str());
    }
}

std::optional<LoadedCheckpoint> CheckpointStore::load_newest_good(
    std::vector<std::string>* problems, std::int64_t max_step) {
    for (const auto& [step, path] : list_step_files(m_dir)) {
        if (step > max_step) continue;
        try {
            return read_checkpoint(path, /*require_manifest=*/true);
        } catch (const CheckpointError& e) {
            m_rejected.insert(path);
            if (problems) problems->push_back(e.what());
        }
    }
    return std::nullopt;
}

}  // namespace smartcash::train
