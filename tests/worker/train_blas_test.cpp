// Which BLAS the worker names (worker/device/blas.hpp), from library paths recorded on real
// systems, and the BLAS this test process itself runs on.
#include <gtest/gtest.h>

#include <filesystem>

#include "worker/device/blas.hpp"

namespace smartcash::train {
namespace {

TEST(Blas, DebianAlternativesAreNamedAndOnlyNetlibIsTheReference) {
    const std::string lib = "/usr/lib/x86_64-linux-gnu/";
    struct Case {
        std::string path;
        std::string name;
        bool reference;
    };
    for (const Case& c :
         {Case{lib + "openblas-pthread/libblas.so.3", "OpenBLAS", false},
          Case{lib + "openblas-openmp/libblas.so.3", "OpenBLAS", false},
          Case{lib + "blis-pthread/libblas.so.3", "BLIS", false},
          Case{lib + "atlas/libblas.so.3", "ATLAS", false},
          Case{lib + "libmkl_rt.so", "MKL", false},
          Case{lib + "blas/libblas.so.3", "reference (netlib)", true},
          Case{"/usr/lib/aarch64-linux-gnu/blas/libblas.so.3.11.0", "reference (netlib)", true}}) {
        const BlasInfo b = classify_blas(c.path, "generic");
        EXPECT_EQ(b.name, c.name) << c.path;
        EXPECT_EQ(b.reference, c.reference) << c.path;
        EXPECT_EQ(b.library, c.path);
        EXPECT_EQ(reference_blas_warning(b).empty(), !c.reference) << c.path;
    }
}

TEST(Blas, MacOSAndWheelBuildsAreNamed) {
    EXPECT_EQ(classify_blas("/System/Library/Frameworks/Accelerate.framework/Versions/A/"
                            "Frameworks/vecLib.framework/Versions/A/libBLAS.dylib",
                            "accelerate")
                  .name,
              "Accelerate");
    EXPECT_EQ(
        classify_blas("/opt/homebrew/Cellar/openblas/0.3.28/lib/libopenblasp-r0.3.28.dylib", "open")
            .name,
        "OpenBLAS");
    // PyTorch's x86 wheels link MKL into libtorch_cpu: the file names no BLAS, the build does.
    const BlasInfo wheel = classify_blas(
        "/opt/venv/lib/python3.12/site-packages/torch/lib/"
        "libtorch_cpu.so",
        "mkl");
    EXPECT_EQ(wheel.name, "MKL");
    EXPECT_FALSE(wheel.reference);
    EXPECT_EQ(classify_blas("", "generic").name, "unknown");
}

TEST(Blas, BuildBlasIsReadFromTheConfigText) {
    // As at::show_config() prints it (Debian's LibTorch 1.13 and a PyTorch wheel).
    EXPECT_EQ(build_blas_from_config("  - Build settings: BLAS_INFO=generic, BUILD_TYPE=Release, "
                                     "CXX_COMPILER=/usr/bin/c++"),
              "generic");
    EXPECT_EQ(build_blas_from_config("Build settings: BUILD_TYPE=Release, BLAS_INFO=mkl\n"), "mkl");
    EXPECT_EQ(build_blas_from_config("no settings here"), "");
}

TEST(Blas, ThisProcessNamesTheLibraryItCalls) {
    const BlasInfo& b = blas_in_use();
    EXPECT_FALSE(b.name.empty());
    if (!b.library.empty()) {
        // Links resolved: the alternatives' symlink is followed to the real file.
        EXPECT_TRUE(std::filesystem::exists(b.library)) << b.library;
        EXPECT_FALSE(std::filesystem::is_symlink(b.library)) << b.library;
    }
}

}  // namespace
}  // namespace smartcash::train
