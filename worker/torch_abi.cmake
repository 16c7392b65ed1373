# LibTorch built with the pre-C++11 ABI of libstdc++ (_GLIBCXX_USE_CXX11_ABI=0, which the Linux
# wheels of PyTorch before 2.7 carry in TORCH_CXX_FLAGS) passes that flag to the targets that link
# torch only, so the worker would then fail to link against the system's fmt, yaml-cpp and OpenCV
# with std::__cxx11::basic_string errors. Stop at configure time instead, saying what to do.
# Also runs as a script (cmake -DTORCH_CXX_FLAGS=... -P torch_abi.cmake), which its test does.
function(smartcash_check_torch_abi flags)
  if(flags MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR
      "This LibTorch was built with the old C++ ABI (TORCH_CXX_FLAGS: ${flags}); the worker links "
      "it with libraries built for the C++11 ABI (fmt, yaml-cpp, OpenCV), which cannot work. Use "
      "a LibTorch built with the C++11 ABI: PyTorch's 'cxx11 ABI' LibTorch download, torch 2.7 or "
      "newer from pip, or your distribution's libtorch-dev; then point CMAKE_PREFIX_PATH at it.")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  smartcash_check_torch_abi("${TORCH_CXX_FLAGS}")
  message(STATUS "LibTorch ABI accepted: ${TORCH_CXX_FLAGS}")
endif()
