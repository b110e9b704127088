// The library's reduction kernels (collectives/kernels.cpp), each instruction set this
// CPU has, against the typed API's element-by-element loop: bitwise the same results
// at every length and alignment, NaN and signed zeros included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "collectives/kernels.hpp"
#include "ipc/communicator.hpp"

namespace {

using ipc::detail::KernelIsa;
using ipc::detail::ReduceFn;
using ipc::detail::ReduceKind;
using ipc::detail::ReduceOp;

std::vector<KernelIsa> isas() {
  std::vector<KernelIsa> v{KernelIsa::baseline};
  if (ipc::detail::kernel_isa() == KernelIsa::avx2) v.push_back(KernelIsa::avx2);
  return v;
}

template <class T>
constexpr ReduceKind kind_of() {
  return std::is_floating_point_v<T> ? ReduceKind::floating
         : std::is_signed_v<T>       ? ReduceKind::signed_int
                                     : ReduceKind::unsigned_int;
}

// Values whose sums and products stay within the type (the typed loop's signed
// arithmetic must not overflow), and for floating point NaN, infinities, signed zeros.
template <class T>
std::vector<T> values(std::mt19937& gen, std::size_t n) {
  std::vector<T> v(n);
  if constexpr (std::is_floating_point_v<T>) {
    std::uniform_real_distribution<T> d(-100, 100);
    std::uniform_int_distribution<int> special(0, 15);
    for (auto& x : v) {
      switch (special(gen)) {
        case 0: x = std::numeric_limits<T>::quiet_NaN(); break;
        case 1: x = T(-0.0); break;
        case 2: x = T(0.0); break;
        case 3: x = std::numeric_limits<T>::infinity(); break;
        default: x = d(gen);
      }
    }
  } else {
    std::uniform_int_distribution<int> d(std::is_signed_v<T> ? -100 : 0, std::is_signed_v<T> ? 100 : 200);
    for (auto& x : v) x = static_cast<T>(d(gen));
  }
  return v;
}

template <class T, class Op>
void check(ReduceOp op, std::mt19937& gen) {
  for (KernelIsa isa : isas()) {
    ReduceFn f = ipc::detail::reduction_kernel(op, kind_of<T>(), sizeof(T), isa);
    ASSERT_NE(f, nullptr) << "op " << int(op) << " size " << sizeof(T);
    for (std::size_t n : {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 257, 1000, 4099}) {
      for (std::size_t skew : {0, 1}) {  // element-aligned but not vector-aligned
        auto a = values<T>(gen, n + skew), b = values<T>(gen, n + skew);
        auto want = a;
        ipc::detail::apply_reduction<T, Op>(want.data() + skew, b.data() + skew, n);
        f(a.data() + skew, b.data() + skew, n);
        ASSERT_EQ(std::memcmp(a.data(), want.data(), a.size() * sizeof(T)), 0)
            << "op " << int(op) << ", " << sizeof(T) << "-byte "
            << (std::is_floating_point_v<T> ? "float" : std::is_signed_v<T> ? "signed" : "unsigned") << ", n " << n
            << ", skew " << skew << ", isa " << int(isa);
      }
    }
  }
}

template <class T>
void check_type(std::mt19937& gen) {
  check<T, ipc::op::sum>(ReduceOp::sum, gen);
  check<T, ipc::op::prod>(ReduceOp::prod, gen);
  check<T, ipc::op::min>(ReduceOp::min, gen);
  check<T, ipc::op::max>(ReduceOp::max, gen);
  if constexpr (std::is_integral_v<T>) {
    check<T, ipc::op::band>(ReduceOp::band, gen);
    check<T, ipc::op::bor>(ReduceOp::bor, gen);
    check<T, ipc::op::bxor>(ReduceOp::bxor, gen);
  } else {
    for (auto op : {ReduceOp::band, ReduceOp::bor, ReduceOp::bxor})
      EXPECT_EQ(ipc::detail::builtin_reduction(op, ReduceKind::floating, sizeof(T)), nullptr);
  }
}

TEST(ReduceKernel, SameAsTheTypedLoop) {
  std::mt19937 gen(7);
  check_type<std::int8_t>(gen);
  check_type<std::uint8_t>(gen);
  check_type<std::int16_t>(gen);
  check_type<std::uint16_t>(gen);
  check_type<std::int32_t>(gen);
  check_type<std::uint32_t>(gen);
  check_type<std::int64_t>(gen);
  check_type<std::uint64_t>(gen);
  check_type<float>(gen);
  check_type<double>(gen);
}

TEST(ReduceKernel, IntegersWrapAround) {
  for (KernelIsa isa : isas()) {
    std::vector<std::int32_t> a(40, std::numeric_limits<std::int32_t>::max()), b(40, 1);
    ipc::detail::reduction_kernel(ReduceOp::sum, ReduceKind::signed_int, 4, isa)(a.data(), b.data(), a.size());
    for (auto x : a) EXPECT_EQ(x, std::numeric_limits<std::int32_t>::min());
    std::vector<std::uint16_t> c(40, 65535), d(40, 65535);
    ipc::detail::reduction_kernel(ReduceOp::prod, ReduceKind::unsigned_int, 2, isa)(c.data(), d.data(), c.size());
    for (auto x : c) EXPECT_EQ(x, 1);  // 65535^2 = 1 mod 2^16
    std::vector<std::int8_t> e(40, -128), f(40, -1);
    ipc::detail::reduction_kernel(ReduceOp::sum, ReduceKind::signed_int, 1, isa)(e.data(), f.data(), e.size());
    for (auto x : e) EXPECT_EQ(x, 127);
  }
}

// The typed API takes the library's kernel for built-in operations on numbers, and its
// own loop for anything else.
TEST(ReduceKernel, TypedApiTakesTheKernel) {
  using ipc::detail::builtin_reduction;
  constexpr auto char_kind = std::is_signed_v<char> ? ReduceKind::signed_int : ReduceKind::unsigned_int;
  EXPECT_EQ((ipc::detail::reduction<char, ipc::op::sum>().apply), builtin_reduction(ReduceOp::sum, char_kind, 1));
  EXPECT_EQ((ipc::detail::reduction<double, ipc::op::max>().apply),
            builtin_reduction(ReduceOp::max, ReduceKind::floating, 8));
  EXPECT_EQ((ipc::detail::reduction<unsigned long, ipc::op::bxor>().apply),
            builtin_reduction(ReduceOp::bxor, ReduceKind::unsigned_int, sizeof(unsigned long)));
  using ipc::detail::reduction;
  EXPECT_EQ((reduction<int, ipc::op::lxor>().apply), (&ipc::detail::apply_reduction<int, ipc::op::lxor>));
  EXPECT_EQ((reduction<bool, ipc::op::sum>().apply), (&ipc::detail::apply_reduction<bool, ipc::op::sum>));
  EXPECT_EQ((reduction<long double, ipc::op::sum>().apply), (&ipc::detail::apply_reduction<long double, ipc::op::sum>));
}

}  // namespace
