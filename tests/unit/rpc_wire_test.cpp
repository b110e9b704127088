// Calls carry numbers, strings and vectors of numbers without Cereal's archives
// (detail/archive.hpp: direct_put / direct_get); the other side may read or write them
// through Cereal, so both must produce the same bytes.
#include <gtest/gtest.h>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ipc/detail/archive.hpp"

using namespace ipc::detail;

namespace {

template <class... T>
std::vector<std::byte> with_cereal(const T&... v) {
  std::vector<std::byte> out;
  VectorSink sink(out);
  OutStream os(&sink);
  cereal::BinaryOutputArchive ar(*os);
  (ar(v), ...);
  return out;
}

template <class... T>
std::vector<std::byte> direct(const T&... v) {
  std::vector<std::byte> out;
  (direct_put(out, v), ...);
  return out;
}

template <class T>
T read_direct(std::span<const std::byte>& in) {
  T v{};
  EXPECT_TRUE(direct_get(in, v));
  return v;
}

}  // namespace

TEST(RpcWire, WhichTypesGoDirect) {
  static_assert(direct_wire_v<int, double, char, bool, std::uint64_t>);
  static_assert(direct_wire_v<std::string, std::vector<char>, std::vector<double>>);
  static_assert(!direct_wire_v<std::vector<bool>>);  // Cereal packs it otherwise
  static_assert(!direct_wire_v<std::vector<std::string>>);
  static_assert(!direct_wire_v<int, std::vector<std::vector<int>>>);
  static_assert(direct_wire_v<>);
}

TEST(RpcWire, SameBytesAsCereal) {
  std::string s = "hello, world";
  std::vector<double> d{1.5, -2.25, std::numeric_limits<double>::infinity()};
  std::vector<char> empty;
  std::vector<std::int64_t> big(1000, -7);
  EXPECT_EQ(direct(42, s, d), with_cereal(42, s, d));
  EXPECT_EQ(direct(true, 'x', 3.0f, std::uint16_t{65535}), with_cereal(true, 'x', 3.0f, std::uint16_t{65535}));
  EXPECT_EQ(direct(empty, std::string()), with_cereal(empty, std::string()));
  EXPECT_EQ(direct(big), with_cereal(big));
}

TEST(RpcWire, ReadsWhatCerealWrote) {
  std::vector<int> v{1, 2, 3};
  auto bytes = with_cereal(std::string("abc"), v, 2.5);
  std::span<const std::byte> in(bytes);
  EXPECT_EQ(read_direct<std::string>(in), "abc");
  EXPECT_EQ(read_direct<std::vector<int>>(in), v);
  EXPECT_EQ(read_direct<double>(in), 2.5);
  EXPECT_TRUE(in.empty());
}

TEST(RpcWire, RefusesShortInput) {
  auto bytes = direct(std::vector<int>{1, 2, 3});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::span<const std::byte> in(bytes.data(), n);
    std::vector<int> v;
    EXPECT_FALSE(direct_get(in, v)) << n << " bytes";
  }
  // A length that claims more than there is (or would overflow the byte count).
  auto huge = direct(std::uint64_t{~0ull / 2});
  std::span<const std::byte> in(huge);
  std::vector<std::uint32_t> v;
  EXPECT_FALSE(direct_get(in, v));
  int x = 0;
  std::span<const std::byte> none;
  EXPECT_FALSE(direct_get(none, x));
}

// A vector is read in place of what it held (kept room: detail::take_spare), from
// bytes at any alignment: the elements are the message's, never left over.
TEST(RpcWire, ReadsIntoAUsedVectorAtAnyAlignment) {
  std::vector<double> want{1.25, -3.5, 7.0};
  auto bytes = direct(want);
  for (std::size_t shift = 0; shift < 8; ++shift) {
    std::vector<std::byte> moved(shift);
    moved.insert(moved.end(), bytes.begin(), bytes.end());
    std::span<const std::byte> in(moved.data() + shift, bytes.size());
    std::vector<double> v(10, 99.0);  // larger before: shrinks to the message
    ASSERT_TRUE(direct_get(in, v)) << "shift " << shift;
    EXPECT_EQ(v, want) << "shift " << shift;
    EXPECT_TRUE(in.empty());
  }
  std::vector<double> small{4.0};  // smaller before: grows
  std::span<const std::byte> in(bytes);
  ASSERT_TRUE(direct_get(in, small));
  EXPECT_EQ(small, want);
}

// The room a procedure's result or by-reference argument leaves is the next
// argument's of its type; a large one is not kept, a smaller one does not replace a
// larger one, and numbers keep nothing.
TEST(RpcWire, SpareRoomGoesToTheNextValueOfItsType) {
  spare<std::vector<char>>() = {};
  std::vector<char> done(100, 'x');
  const char* room = done.data();
  give_spare(std::move(done));
  EXPECT_GE(spare<std::vector<char>>().capacity(), 100u);
  EXPECT_TRUE(spare<std::vector<char>>().empty());  // kept empty: only its room
  std::vector<char> next;
  take_spare(next);
  EXPECT_EQ(next.data(), room);
  EXPECT_EQ(spare<std::vector<char>>().capacity(), 0u);  // taken, not shared
  give_spare(std::vector<char>(10));
  give_spare(std::vector<char>(5));  // smaller: the larger one stays
  EXPECT_GE(spare<std::vector<char>>().capacity(), 10u);
  give_spare(std::vector<char>(1u << 20));  // large: not held on to
  EXPECT_LT(spare<std::vector<char>>().capacity(), 1u << 20);
  std::string s = "a string longer than the small-string buffer";
  give_spare(std::move(s));
  std::string t;
  take_spare(t);
  EXPECT_GE(t.capacity(), 40u);
  EXPECT_TRUE(t.empty());
  int n = 5;
  take_spare(n);  // (compiles to nothing)
  give_spare(std::move(n));
  EXPECT_EQ(n, 5);
}
