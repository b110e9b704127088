#include <gtest/gtest.h>

#include <array>

#include "wire/frame.hpp"

using namespace ipc::wire;

namespace {

std::array<std::byte, kFrameHeaderSize> bytes_of(const FrameHeader& h) {
  std::array<std::byte, kFrameHeaderSize> b{};
  encode_header(h, b);
  return b;
}

FrameError decode(const FrameHeader& h, FrameHeader& out, FrameLimits lim = {}) {
  auto b = bytes_of(h);
  return decode_header(b, lim, out);
}

}  // namespace

TEST(Frame, RoundTrip) {
  FrameHeader h;
  h.type = FrameType::eager;
  h.comm = 7;
  h.source = 3;
  h.tag = 42;
  h.length = h.size = 1000;
  h.cookie = 0x1122334455667788ull;
  h.cookie2 = 9;
  FrameHeader out;
  ASSERT_EQ(decode(h, out), FrameError::ok);
  EXPECT_EQ(out.type, FrameType::eager);
  EXPECT_EQ(out.comm, 7u);
  EXPECT_EQ(out.source, 3);
  EXPECT_EQ(out.tag, 42);
  EXPECT_EQ(out.length, 1000u);
  EXPECT_EQ(out.cookie, 0x1122334455667788ull);
  EXPECT_EQ(out.cookie2, 9u);
}

TEST(Frame, RejectsUnknownType) {
  FrameHeader h;
  h.type = static_cast<FrameType>(99);
  FrameHeader out;
  EXPECT_EQ(decode(h, out), FrameError::bad_type);
  h.type = static_cast<FrameType>(0);
  EXPECT_EQ(decode(h, out), FrameError::bad_type);
}

TEST(Frame, RejectsLengthOverLimit) {
  FrameHeader h;
  h.type = FrameType::eager;
  h.length = h.size = 1u << 20;
  FrameHeader out;
  FrameLimits lim;
  lim.max_payload = 1u << 20;
  EXPECT_EQ(decode(h, out, lim), FrameError::ok);
  h.length = h.size = (1u << 20) + 1;
  EXPECT_EQ(decode(h, out, lim), FrameError::too_long);
  h.type = FrameType::data;
  EXPECT_EQ(decode(h, out, lim), FrameError::too_long);
  h.type = FrameType::rts;
  h.length = 0;
  EXPECT_EQ(decode(h, out, lim), FrameError::too_long);
  h.length = h.size = ~std::uint64_t{0};
  h.type = FrameType::eager;
  EXPECT_EQ(decode(h, out), FrameError::too_long);
}

TEST(Frame, RejectsFieldsThatContradictTheType) {
  FrameHeader out;
  FrameHeader h;
  h.type = FrameType::eager;
  h.length = 10;
  h.size = 11;
  EXPECT_EQ(decode(h, out), FrameError::inconsistent);
  h = {};
  h.type = FrameType::cts;
  h.length = 1;
  EXPECT_EQ(decode(h, out), FrameError::inconsistent);
  h.type = FrameType::rts;
  EXPECT_EQ(decode(h, out), FrameError::inconsistent);
  h.type = FrameType::fin;
  EXPECT_EQ(decode(h, out), FrameError::inconsistent);
}
