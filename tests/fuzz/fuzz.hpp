// Fuzz targets: every parser of bytes from outside, fed arbitrary input. Built for
// libFuzzer with -DIPC_FUZZ=ON (clang), otherwise with fuzz_main.cpp, a deterministic
// driver that feeds mutations of valid inputs (run by ctest, and under ASan in the
// sanitizer build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

/// Valid inputs of the target, to mutate from (the driver's seeds).
std::vector<std::vector<std::uint8_t>> fuzz_seeds();
