// What `smartcash-worker devices --json` prints: which accelerators the worker's LibTorch can use
// on this machine, and why not where it cannot. The worker is the only judge of device presence;
// the supervisor asks it once at start and skips the tiers whose device is unusable.
#pragma once

#include <optional>
#include <string>

#include "common/protocol.hpp"

namespace smartcash {

struct DeviceStatus {
    bool usable = false;
    std::string why;  ///< when not usable: e.g. "this LibTorch was built without CUDA"
};

struct DevicesReport {
    DeviceStatus cuda;
    DeviceStatus mps;
    std::string torch_version;    ///< "2.11.0", "1.13.1"
    std::string blas;             ///< the BLAS the CPU math runs on: "OpenBLAS", "MKL", ...
    std::string blas_library;     ///< the file that provides it, "" when unknown
    bool blas_reference = false;  ///< netlib's unoptimised reference BLAS
};

namespace devices_field {
inline constexpr const char* cuda = "cuda";
inline constexpr const char* mps = "mps";
inline constexpr const char* usable = "usable";
inline constexpr const char* why = "why";
inline constexpr const char* torch_version = "torch_version";
inline constexpr const char* blas = "blas";
inline constexpr const char* blas_library = "blas_library";
inline constexpr const char* blas_reference = "blas_reference";
}  // namespace devices_field

protocol::Json to_json(const DevicesReport& report);
/// Nullopt (and *error set) when `json` is not a devices report.
std::optional<DevicesReport> devices_report_from_json(const protocol::Json& json,
                                                      std::string* error);

}  // namespace smartcash
