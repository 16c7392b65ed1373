// Which BLAS the worker's matrix products run on. Debian's LibTorch (BLAS_INFO=generic) calls
// whatever libblas.so.3 the alternatives system points at, and on a machine with only the
// reference BLAS that is netlib's unoptimised one: several times slower on the CPU (README,
// Performance). The worker names it in `devices`, in `bench --json` and, when it is the reference
// one, in a warning when training starts.
#pragma once

#include <string>

namespace smartcash::train {

struct BlasInfo {
    std::string name;        ///< "OpenBLAS", "reference (netlib)", "MKL", "Accelerate", ...
    std::string library;     ///< the file that provides dgemm_ (links resolved), "" when unknown
    bool reference = false;  ///< the unoptimised reference implementation
};

/// From the resolved path of the library that provides dgemm_ ("" when none was found) and the
/// build's BLAS_INFO (from at::show_config(): "generic", "mkl", "open", "accelerate", ...).
BlasInfo classify_blas(const std::string& library, const std::string& build_blas);

/// The BLAS_INFO value in the text of at::show_config(); "" when absent.
std::string build_blas_from_config(const std::string& show_config);

/// The BLAS this process calls, found once (dladdr of dgemm_, links resolved).
const BlasInfo& blas_in_use();

/// One line for a person: "OpenBLAS (/usr/lib/.../libblas.so.3)".
std::string describe(const BlasInfo& blas);

/// The warning printed when training starts on the reference BLAS; "" when the BLAS is not the
/// reference one.
std::string reference_blas_warning(const BlasInfo& blas);

}  // namespace smartcash::train
