// Copies of a few bytes whose count is known only at run time (frame heads, small
// payloads): memcpy with a variable count is a library call, which costs more than a
// small message's other work. Up to 16 bytes are two overlapping 8-byte moves (or
// 4-byte ones), with no byte read or written outside [0, n).
//
// Bulk copies of a program's bytes (into and out of a ring, a node group's slot, a
// message kept aside): copy_bytes(). The C library's memcpy falls from 40-100 GB/s to
// 2-3 GB/s on some x86 CPUs (measured on an AMD EPYC, glibc 2.36) from 4 KiB up when the
// destination lies 1-15 bytes past the source modulo 4 KiB, and to about half its
// speed at 16-63 bytes: each load then looks like it may read what a store just
// before it wrote (the two addresses agree in their low 12 bits), and waits. Where a
// program's buffer starts is its own choice (16 bytes past a page for a large malloc),
// and every record of a ring or slot sits somewhere else in its page: without this,
// ping-pong of 4 / 8 KiB from buffers 16-40 bytes past a page took 2 / 4-5 times as
// long as from page-aligned ones. Those copies go through a loop of 32-byte (or
// 16-byte) moves, four loads before four stores, which keeps 35-50 GB/s at every
// offset. (On CPUs without the weakness, an AMD EPYC of family 26, the loop is as fast
// as memcpy at those offsets or faster: 4 KiB 114 GB/s against 93, 1 MiB 49-51 both.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ipc::base {

/// memcpy of `n` bytes of a program's data (the ranges do not overlap), at the same
/// speed whatever the two addresses are (see the top of this file).
void copy_aliased(void* dst, const void* src, std::size_t n) noexcept;

/// From this size the C library's copy takes the way that suffers (below it, memcpy
/// keeps its speed at every offset).
inline constexpr std::size_t kAliasedFrom = 2048;

/// Whether the destination lies 1 to `within` bytes past the source, modulo 4 KiB.
inline bool aliased(std::uintptr_t dst, std::uintptr_t src, std::uintptr_t within = 63) {
  return ((dst - src) & 4095) - 1 < within;
}
inline bool aliased(const void* dst, const void* src) {
  return aliased(reinterpret_cast<std::uintptr_t>(dst), reinterpret_cast<std::uintptr_t>(src));
}

inline void copy_bytes(void* dst, const void* src, std::size_t n) {
  if (n >= kAliasedFrom && aliased(dst, src)) [[unlikely]]
    return copy_aliased(dst, src, n);
  if (n) std::memcpy(dst, src, n);
}

/// The same where the ranges may overlap (memmove's contract).
inline void move_bytes(void* dst, const void* src, std::size_t n) {
  auto d = reinterpret_cast<std::uintptr_t>(dst), s = reinterpret_cast<std::uintptr_t>(src);
  if (n >= kAliasedFrom && aliased(dst, src) && (d >= s + n || s >= d + n)) [[unlikely]]
    return copy_aliased(dst, src, n);
  if (n && d != s) std::memmove(dst, src, n);
}

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
  } else {
    copy_bytes(d, s, n);
  }
}

}  // namespace ipc::base
