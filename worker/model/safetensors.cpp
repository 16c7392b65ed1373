#include "worker/model/safetensors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"

namespace smartcash::model {
namespace {

using Json = nlohmann::json;

struct DtypeName {
    const char* name;
    torch::ScalarType type;
};

constexpr std::array<DtypeName, 10> dtype_names{{
    {"F64", torch::kFloat64},
    {"F32", torch::kFloat32},
    {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},
    {"I32", torch::kInt32},
    {"I16", torch::kInt16},
    {"I8", torch::kInt8},
    {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
}};

// Header lengths beyond this are not a weights file's header (the format's own limit is 100 MB).
constexpr std::uint64_t max_header_bytes = 100'000'000;

bool little_endian_host() {
    const std::uint16_t one = 1;
    unsigned char first = 0;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

std::uint64_t read_u64_le(const std::string& bytes) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    return v;
}

void append_u64_le(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

bool looks_like_safetensors(const std::string& bytes) {
    if (bytes.size() < 10) return false;
    const std::uint64_t n = read_u64_le(bytes);
    return n >= 2 && n <= max_header_bytes && n <= bytes.size() - 8 && bytes[8] == '{';
}

NamedTensors parse_safetensors(const std::string& bytes, const std::string& path) {
    if (!little_endian_host())
        throw WeightsFileError(path + ": safetensors data is little-endian; this host is not");
    if (!looks_like_safetensors(bytes))
        throw WeightsFileError(path +
                               ": not a safetensors file (no header length and JSON header)");
    const std::uint64_t header_len = read_u64_le(bytes);
    Json header;
    try {
        header = Json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_len));
    } catch (const Json::exception& e) {
        throw WeightsFileError(
            fmt::format("{}: the safetensors header is not valid JSON: {}", path, e.what()));
    }
    if (!header.is_object())
        throw WeightsFileError(path + ": the safetensors header is not a JSON object");
    const std::uint64_t data_start = 8 + header_len;
    const std::uint64_t data_size = bytes.size() - data_start;

    NamedTensors out;
    // The format stores entries by name; keep the file's byte order, which is the writer's order.
    std::vector<std::pair<std::uint64_t, std::string>> order;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const Json& entry = it.value();
        if (name == "__metadata__") {
            if (!entry.is_object())
                throw WeightsFileError(path + ": __metadata__ is not an object");
            for (auto m = entry.begin(); m != entry.end(); ++m) {
                if (!m.value().is_string())
                    throw WeightsFileError(
                        fmt::format("{}: __metadata__.{} is not a string", path, m.key()));
                out.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        try {
            const std::string dtype = entry.at("dtype").get<std::string>();
            const auto shape = entry.at("shape").get<std::vector<std::int64_t>>();
            const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
            const DtypeName* type = nullptr;
            for (const auto& d : dtype_names)
                if (dtype == d.name) type = &d;
            if (!type)
                throw WeightsFileError(
                    fmt::format("{}: tensor '{}' has dtype {}, which is not supported (F64, F32, "
                                "F16, BF16, I64, I32, I16, I8, U8, BOOL are)",
                                path, name, dtype));
            if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
                throw WeightsFileError(
                    fmt::format("{}: tensor '{}' has data_offsets outside the file's {} data bytes",
                                path, name, data_size));
            std::int64_t numel = 1;
            for (auto d : shape) {
                if (d < 0)
                    throw WeightsFileError(
                        fmt::format("{}: tensor '{}' has a negative dimension", path, name));
                numel *= d;
            }
            auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type->type));
            const auto nbytes = static_cast<std::uint64_t>(numel) * tensor.element_size();
            if (nbytes != offsets[1] - offsets[0])
                throw WeightsFileError(fmt::format(
                    "{}: tensor '{}' ({} {} values) needs {} bytes but its data_offsets span {}",
                    path, name, numel, dtype, nbytes, offsets[1] - offsets[0]));
            if (nbytes > 0)
                std::memcpy(tensor.data_ptr(), bytes.data() + data_start + offsets[0], nbytes);
            order.emplace_back(offsets[0], name);
            out.tensors.emplace_back(name, tensor);
        } catch (const Json::exception& e) {
            throw WeightsFileError(
                fmt::format("{}: header entry '{}' needs dtype, shape and data_offsets: {}", path,
                            name, e.what()));
        }
    }
    std::vector<size_t> index(out.tensors.size());
    for (size_t i = 0; i < index.size(); ++i) index[i] = i;
    std::stable_sort(index.begin(), index.end(),
                     [&](size_t a, size_t b) { return order[a].first < order[b].first; });
    std::vector<std::pair<std::string, torch::Tensor>> sorted;
    sorted.reserve(index.size());
    for (auto i : index) sorted.push_back(std::move(out.tensors[i]));
    out.tensors = std::move(sorted);
    return out;
}

NamedTensors read_safetensors(const std::string& path) {
    return parse_safetensors(read_file(path), path);
}

std::string safetensors_bytes(const NamedTensors& named) {
    if (!little_endian_host())
        throw WeightsFileError("safetensors data is little-endian; this host is not");
    Json header = Json::object();
    std::vector<torch::Tensor> data;
    std::uint64_t offset = 0;
    for (const auto& [name, t] : named.tensors) {
        auto cpu = t.detach().to(torch::kCPU).contiguous();
        const char* dtype = nullptr;
        for (const auto& d : dtype_names)
            if (cpu.scalar_type() == d.type) dtype = d.name;
        if (!dtype)
            throw WeightsFileError(
                fmt::format("tensor '{}' has dtype {}, which safetensors "
                            "output does not support",
                            name, c10::toString(cpu.scalar_type())));
        const auto nbytes = static_cast<std::uint64_t>(cpu.numel()) * cpu.element_size();
        header[name] = {{"dtype", dtype},
                        {"shape", cpu.sizes().vec()},
                        {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
        data.push_back(cpu);
    }
    if (!named.metadata.empty()) header["__metadata__"] = named.metadata;
    std::string text = header.dump();
    // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
    while ((8 + text.size()) % 8 != 0) text.push_back(' ');
    std::string out;
    out.reserve(8 + text.size() + offset);
    append_u64_le(out, text.size());
    out += text;
    for (const auto& t : data)
        out.append(static_cast<const char*>(t.data_ptr()),
                   static_cast<size_t>(t.numel()) * t.element_size());
    return out;
}

}  // namespace smartcash::model
