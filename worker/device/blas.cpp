#include "worker/device/blas.hpp"

#include <ATen/Version.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

namespace smartcash::train {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool has(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

// Library paths as installed by (recorded from the packages' file lists):
//   Debian/Ubuntu alternatives for libblas.so.3 (update-alternatives --display
//   libblas.so.3-x86_64-linux-gnu): .../openblas-pthread/libblas.so.3 (libopenblas0-pthread),
//   .../openblas-openmp/, .../openblas-serial/, .../blis-pthread/libblas.so.3 (libblis4-pthread),
//   .../atlas/libblas.so.3 (libatlas3-base), .../blas/libblas.so.3 (libblas3: netlib's reference),
//   .../libmkl_rt.so (libmkl-rt);
//   macOS: /System/Library/Frameworks/Accelerate.framework/.../vecLib.framework/.../libBLAS.dylib;
//   Homebrew: /opt/homebrew/opt/openblas/lib/libopenblas.0.dylib;
//   PyTorch's x86 wheels link MKL into libtorch_cpu itself (BLAS_INFO=mkl).
BlasInfo classify_blas(const std::string& library, const std::string& build_blas) {
    BlasInfo b;
    b.library = library;
    const std::string path = lower(library);
    const std::string build = lower(build_blas);
    if (has(path, "openblas"))
        b.name = "OpenBLAS";
    else if (has(path, "mkl"))
        b.name = "MKL";
    else if (has(path, "blis"))
        b.name = "BLIS";
    else if (has(path, "atlas"))
        b.name = "ATLAS";
    else if (has(path, "accelerate") || has(path, "veclib"))
        b.name = "Accelerate";
    else if (has(path, "/blas/libblas.") || has(path, "netlib") || has(path, "refblas")) {
        b.name = "reference (netlib)";
        b.reference = true;
    } else if (build == "mkl")
        b.name = "MKL";
    else if (build == "open" || build == "openblas")
        b.name = "OpenBLAS";
    else if (build == "accelerate" || build == "veclib")
        b.name = "Accelerate";
    else if (build == "eigen")
        b.name = "Eigen";
    else if (!build.empty() && build != "generic")
        b.name = build_blas;
    else
        b.name = library.empty() ? "unknown" : "a system libblas";
    return b;
}

std::string build_blas_from_config(const std::string& show_config) {
    const std::string key = "BLAS_INFO=";
    const auto at = show_config.find(key);
    if (at == std::string::npos) return "";
    const auto start = at + key.size();
    const auto end = show_config.find_first_of(", \n", start);
    return show_config.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

const BlasInfo& blas_in_use() {
    static const BlasInfo info = [] {
        std::string library;
        if (void* symbol = ::dlsym(RTLD_DEFAULT, "dgemm_")) {
            Dl_info where{};
            if (::dladdr(symbol, &where) != 0 && where.dli_fname) {
                std::error_code ec;
                const auto real = std::filesystem::canonical(where.dli_fname, ec);
                library = ec ? std::string(where.dli_fname) : real.string();
            }
        }
        return classify_blas(library, build_blas_from_config(at::show_config()));
    }();
    return info;
}

std::string describe(const BlasInfo& blas) {
    return blas.library.empty() ? blas.name : blas.name + " (" + blas.library + ")";
}

std::string reference_blas_warning(const BlasInfo& blas) {
    if (!blas.reference) return "";
    return "warning: LibTorch calls the reference BLAS (" + blas.library +
           "), several times slower on the CPU than an optimised one; install one (Debian, "
           "Ubuntu: apt-get install libopenblas0-pthread) and start again";
}

}  // namespace smartcash::train
