// The safetensors format, read and written without a dependency beyond nlohmann-json:
//
//   [8 bytes]  N, the header's length, unsigned little-endian
//   [N bytes]  a JSON object: {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//              ..., "__metadata__": {"key": "text", ...}}  (metadata optional, strings only)
//   [rest]     the tensors' bytes, little-endian, C order; offsets are relative to this part
//
// It is the format timm and the model hubs publish weights in.
#pragma once

#include <torch/torch.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace smartcash::model {

/// A weights file that cannot be read, or holds something else than it should. what() starts
/// with the file's path.
class WeightsFileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Named tensors in file order, plus the file's string metadata.
struct NamedTensors {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::map<std::string, std::string> metadata;
};

/// True when `bytes` start like a safetensors file (a plausible header length, then '{').
bool looks_like_safetensors(const std::string& bytes);

/// Parses safetensors `bytes` (the contents of `path`, named in errors). Tensors are CPU tensors
/// of the file's dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL). Checks that every
/// tensor's byte range matches its shape and lies inside the file.
NamedTensors parse_safetensors(const std::string& bytes, const std::string& path);

/// Reads and parses a safetensors file.
NamedTensors read_safetensors(const std::string& path);

/// The safetensors bytes of `tensors` (any device; written contiguous, in the given order).
std::string safetensors_bytes(const NamedTensors& tensors);

}  // namespace smartcash::model
