// The built-in reductions on numbers, compiled here once per instruction set rather
// than in the program: the typed API's loop is built with the program's flags, which at
// -O2 leave a char sum element by element (64 KiB: 20 us, against 3 us here with
// baseline SSE2 and 1 us with AVX2). Built at -O3 (runtime/CMakeLists.txt) so that the
// loops are vectorized; the buffers never overlap (restrict), so no run-time check.
// The AVX2 copy is chosen at run time by the CPU (cpuid), once.
#include "collectives/kernels.hpp"

#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IPC_KERNELS_AVX2 1
#else
#define IPC_KERNELS_AVX2 0
#endif

namespace ipc::detail {
namespace {

// Integer sums and products in unsigned arithmetic at least as wide as int: they wrap
// around where signed arithmetic would be undefined (and short * short, promoted to
// int, could overflow).
template <class T>
using Wide = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;

// The same expressions as ipc::op's (communicator.hpp), so that floating-point min and
// max treat NaN and signed zeros as the typed loop does.
template <ReduceOp O, class T>
[[gnu::always_inline]] inline T combine(T a, T b) {
  if constexpr (O == ReduceOp::sum) {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<Wide<T>>(a) + static_cast<Wide<T>>(b));
    else
      return a + b;
  } else if constexpr (O == ReduceOp::prod) {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<Wide<T>>(a) * static_cast<Wide<T>>(b));
    else
      return a * b;
  } else if constexpr (O == ReduceOp::min) {
    return b < a ? b : a;
  } else if constexpr (O == ReduceOp::max) {
    return a < b ? b : a;
  } else if constexpr (O == ReduceOp::band) {
    return static_cast<T>(a & b);
  } else if constexpr (O == ReduceOp::bor) {
    return static_cast<T>(a | b);
  } else {
    return static_cast<T>(a ^ b);
  }
}

template <ReduceOp O, class T>
[[gnu::always_inline]] inline void run(void* inout, const void* in, std::size_t n) {
  T* __restrict a = static_cast<T*>(inout);
  const T* __restrict b = static_cast<const T*>(in);
  for (std::size_t i = 0; i < n; ++i) a[i] = combine<O>(a[i], b[i]);
}

template <ReduceOp O, class T>
void baseline(void* inout, const void* in, std::size_t n) {
  run<O, T>(inout, in, n);
}

#if IPC_KERNELS_AVX2
template <ReduceOp O, class T>
[[gnu::target("avx2")]] void avx2(void* inout, const void* in, std::size_t n) {
  run<O, T>(inout, in, n);
}
#endif

template <ReduceOp O, class T>
ReduceFn entry(KernelIsa isa) {
#if IPC_KERNELS_AVX2
  if (isa == KernelIsa::avx2) return &avx2<O, T>;
#else
  if (isa != KernelIsa::baseline) return nullptr;
#endif
  return &baseline<O, T>;
}

template <class T>
ReduceFn for_type(ReduceOp op, KernelIsa isa) {
  switch (op) {
    case ReduceOp::sum: return entry<ReduceOp::sum, T>(isa);
    case ReduceOp::prod: return entry<ReduceOp::prod, T>(isa);
    case ReduceOp::min: return entry<ReduceOp::min, T>(isa);
    case ReduceOp::max: return entry<ReduceOp::max, T>(isa);
    default: break;
  }
  if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case ReduceOp::band: return entry<ReduceOp::band, T>(isa);
      case ReduceOp::bor: return entry<ReduceOp::bor, T>(isa);
      case ReduceOp::bxor: return entry<ReduceOp::bxor, T>(isa);
      default: break;
    }
  }
  return nullptr;  // bitwise operations on floating point
}

// Integers of 1, 2, 4 and 8 bytes, of one signedness.
template <class I1, class I2, class I4, class I8>
ReduceFn for_size(ReduceOp op, std::size_t elem_size, KernelIsa isa) {
  switch (elem_size) {
    case 1: return for_type<I1>(op, isa);
    case 2: return for_type<I2>(op, isa);
    case 4: return for_type<I4>(op, isa);
    case 8: return for_type<I8>(op, isa);
    default: return nullptr;
  }
}

KernelIsa detect() noexcept {
#if IPC_KERNELS_AVX2
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return KernelIsa::avx2;
#endif
  return KernelIsa::baseline;
}

}  // namespace

ReduceFn reduction_kernel(ReduceOp op, ReduceKind kind, std::size_t elem_size, KernelIsa isa) noexcept {
  switch (kind) {
    case ReduceKind::unsigned_int:
      return for_size<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>(op, elem_size, isa);
    case ReduceKind::signed_int:
      return for_size<std::int8_t, std::int16_t, std::int32_t, std::int64_t>(op, elem_size, isa);
    case ReduceKind::floating:
      if (elem_size == sizeof(float)) return for_type<float>(op, isa);
      if (elem_size == sizeof(double)) return for_type<double>(op, isa);
      return nullptr;
  }
  return nullptr;
}

KernelIsa kernel_isa() noexcept {
  static const KernelIsa isa = detect();
  return isa;
}

ReduceFn builtin_reduction(ReduceOp op, ReduceKind kind, std::size_t elem_size) noexcept {
  return reduction_kernel(op, kind, elem_size, kernel_isa());
}

}  // namespace ipc::detail
