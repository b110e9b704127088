// copy_aliased(): see copy.hpp.
#include "base/copy.hpp"

#include <cstring>

namespace ipc::base {
namespace {

#if defined(__x86_64__)
// Four loads, then four stores, per step of four vectors of V bytes: no load waits
// behind a store of the same step, whatever the low bits of the two addresses. Inlined
// into each caller below, whose target decides the instructions (V = 32: AVX2).
template <std::size_t V>
[[gnu::always_inline]] inline void copy_steps(std::byte* d, const std::byte* s, std::size_t n) {
  typedef char Vec __attribute__((vector_size(V)));
  std::size_t i = 0;
  for (; i + 4 * V <= n; i += 4 * V) {
    Vec a, b, c, e;
    std::memcpy(&a, s + i, V);
    std::memcpy(&b, s + i + V, V);
    std::memcpy(&c, s + i + 2 * V, V);
    std::memcpy(&e, s + i + 3 * V, V);
    std::memcpy(d + i, &a, V);
    std::memcpy(d + i + V, &b, V);
    std::memcpy(d + i + 2 * V, &c, V);
    std::memcpy(d + i + 3 * V, &e, V);
  }
  if (i < n) std::memcpy(d + i, s + i, n - i);  // under four vectors: memcpy's short way
}

[[gnu::target("avx2")]] void copy_avx2(std::byte* d, const std::byte* s, std::size_t n) { copy_steps<32>(d, s, n); }
void copy_sse2(std::byte* d, const std::byte* s, std::size_t n) { copy_steps<16>(d, s, n); }

bool have_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}
#endif

}  // namespace

void copy_aliased(void* dst, const void* src, std::size_t n) noexcept {
#if defined(__x86_64__)
  auto* d = static_cast<std::byte*>(dst);
  auto* s = static_cast<const std::byte*>(src);
  if (have_avx2())
    copy_avx2(d, s, n);
  else
    copy_sse2(d, s, n);
#else
  std::memcpy(dst, src, n);
#endif
}

}  // namespace ipc::base
