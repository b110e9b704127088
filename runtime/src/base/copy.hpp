// Copies of a few bytes whose count is known only at run time (frame heads, small
// payloads): memcpy with a variable count is a library call, which costs more than a
// small message's other work. Up to 16 bytes are two overlapping 8-byte moves (or
// 4-byte ones), with no byte read or written outside [0, n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ipc::base {

inline void copy_small(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<std::byte*>(dst);
  auto* s = static_cast<const std::byte*>(src);
  if (n >= 8 && n <= 16) {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(d, &a, 4);
    std::memcpy(d + n - 4, &b, 4);
  } else if (n != 0) {
    std::memcpy(d, s, n);
  }
}

}  // namespace ipc::base
