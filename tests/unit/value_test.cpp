// The value kinds: what is sent as raw bytes, what through Cereal, and receive-side
// checks, through the same adapters the Communicator uses.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ipc/value.hpp"

using namespace ipc;

namespace {

struct Point {
  double x, y;
  int id;
};

struct Person {
  std::string name;
  std::vector<int> scores;
  template <class A>
  void serialize(A& ar) {
    ar(name, scores);
  }
  bool operator==(const Person&) const = default;
};

// Sends `in` through the adapters and receives into `out`, like a message would.
template <class In, class Out>
std::size_t transfer(const In& in, Out& out) {
  auto src = detail::send_source(in);
  auto dst = detail::recv_target(out);
  void* p = dst.destination(src.size);
  if (src.size) std::memcpy(p, src.data, src.size);
  if (dst.finish) dst.finish();
  return src.size;
}

}  // namespace

static_assert(RawValue<int> && RawValue<Point> && RawValue<std::array<int, 3>>);
static_assert(!RawValue<int*> && !RawValue<std::string>);
static_assert(RawRange<std::vector<double>> && RawRange<std::string> && RawRange<std::span<const int>>);
static_assert(!RawRange<std::vector<std::string>>);
static_assert(SerializableValue<std::map<std::string, int>> && SerializableValue<Person>);

TEST(Values, ArithmeticAndStructsAreRawBytesWithoutCopy) {
  Point p{1.5, -2.5, 7};
  auto src = detail::send_source(p);
  EXPECT_EQ(src.data, &p);  // zero copy
  EXPECT_EQ(src.size, sizeof(Point));
  Point q{};
  transfer(p, q);
  EXPECT_EQ(q.x, 1.5);
  EXPECT_EQ(q.id, 7);
  double d = 0;
  transfer(3.25, d);
  EXPECT_EQ(d, 3.25);
}

TEST(Values, ContiguousRangesAreRawBytesAndResize) {
  std::vector<double> v{1, 2, 3, 4};
  auto src = detail::send_source(v);
  EXPECT_EQ(src.data, v.data());
  EXPECT_EQ(src.size, 4 * sizeof(double));
  std::vector<double> w{9};
  transfer(v, w);
  EXPECT_EQ(w, v);
  std::string s = "hello, ranks";
  std::string t;
  transfer(s, t);
  EXPECT_EQ(t, s);
  std::vector<int> empty, got{1, 2};
  transfer(empty, got);
  EXPECT_TRUE(got.empty());
}

TEST(Values, SpansSendAndReceiveInPlace) {
  int a[5] = {1, 2, 3, 4, 5};
  std::span<const int> s(a, 3);
  int b[8] = {};
  std::span<int> into(b);
  EXPECT_EQ(transfer(s, into), 3 * sizeof(int));
  EXPECT_EQ(b[2], 3);
  EXPECT_EQ(b[3], 0);
}

TEST(Values, OtherTypesGoThroughCereal) {
  std::map<std::string, int> m{{"a", 1}, {"bb", 2}};
  std::map<std::string, int> m2;
  transfer(m, m2);
  EXPECT_EQ(m2, m);
  std::vector<std::vector<int>> nested{{1}, {}, {2, 3}};
  std::vector<std::vector<int>> n2;
  transfer(nested, n2);
  EXPECT_EQ(n2, nested);
  Person p{"Ada", {90, 95}};
  Person q;
  transfer(p, q);
  EXPECT_EQ(q, p);
  std::vector<std::string> words{"x", "yy"};
  std::vector<std::string> w2;
  transfer(words, w2);
  EXPECT_EQ(w2, words);
}

TEST(Values, SizeMismatchesAreTruncationErrors) {
  std::vector<char> big(100);
  int small = 0;
  auto dst = detail::recv_target(small);
  EXPECT_THROW(dst.destination(100), Truncation);
  int buf[2];
  std::span<int> sp(buf);
  auto sdst = detail::recv_target(sp);
  EXPECT_THROW(sdst.destination(3 * sizeof(int)), Truncation);
  std::vector<double> v;
  auto vdst = detail::recv_target(v);
  EXPECT_THROW(vdst.destination(7), Truncation);  // not a whole number of doubles
}

TEST(Values, GarbageForCerealIsAnError) {
  std::map<std::string, int> m;
  auto dst = detail::recv_target(m);
  void* p = dst.destination(16);
  std::memset(p, 0xff, 16);  // claims an enormous element count
  EXPECT_THROW(dst.finish(), Truncation);
}

TEST(Values, OwnedSendKeepsATemporaryAlive) {
  auto src = detail::send_source_owned(std::vector<int>{1, 2, 3});
  ASSERT_TRUE(src.keep);
  EXPECT_EQ(src.size, 3 * sizeof(int));
  EXPECT_EQ(static_cast<const int*>(src.data)[2], 3);
  auto one = detail::send_source_owned(42);
  EXPECT_EQ(*static_cast<const int*>(one.data), 42);
}

// A receive of any size as bytes (the library's own: RPC requests and replies, the
// farm's messages): resized to each message, shrinking too, no callable.
TEST(Values, BytesIntoResizesToEachMessage) {
  std::vector<std::byte> into(3, std::byte{9});
  detail::RecvTarget dst;
  dst.bytes_into = &into;
  EXPECT_FALSE(dst.prepare);
  for (std::size_t n : {100u, 0u, 5u, 4096u, 1u}) {
    void* p = dst.destination(n);
    EXPECT_EQ(into.size(), n);
    EXPECT_EQ(p, static_cast<void*>(into.data()));
  }
}
