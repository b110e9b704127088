// 64-bit FNV-1a: a fingerprint of bytes (procedure signatures, farm task lists), not
// a defence against anyone choosing them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ipc::base {

inline constexpr std::uint64_t kFnvBasis = 1469598103934665603ull;

/// Folds `n` bytes at `p` into `h` (start from kFnvBasis).
inline std::uint64_t fnv1a(std::uint64_t h, const void* p, std::size_t n) {
  auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace ipc::base
