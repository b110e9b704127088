// The stream prefix (wire/frame.hpp) and the engine's protocol header
// (core/protocol.hpp): round trips, and every way bytes off the wire can lie.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "base/check.hpp"
#include "core/protocol.hpp"
#include "wire/frame.hpp"

using namespace ipc;
using namespace ipc::wire;
namespace proto = ipc::detail::proto;

namespace {

FrameError prefix_round_trip(std::size_t head, std::uint64_t length, std::size_t& h, std::uint64_t& l,
                             FrameLimits lim = {}) {
  std::array<std::byte, kStreamPrefix> b{};
  encode_prefix(head, length, b);
  return decode_prefix(b, lim, h, l);
}

proto::Encoded encoded(const proto::Header& h) {
  proto::Encoded e;
  proto::encode(h, e);
  return e;
}

}  // namespace

TEST(Frame, PrefixRoundTrip) {
  std::size_t h = 0;
  std::uint64_t l = 0;
  ASSERT_EQ(prefix_round_trip(12, 1000, h, l), FrameError::ok);
  EXPECT_EQ(h, 12u);
  EXPECT_EQ(l, 1000u);
  ASSERT_EQ(prefix_round_trip(kMaxHead, 0, h, l), FrameError::ok);
  EXPECT_EQ(h, kMaxHead);
  EXPECT_EQ(l, 0u);
}

TEST(Frame, PrefixRejectsHeadSizesOutOfRange) {
  std::size_t h = 0;
  std::uint64_t l = 0;
  EXPECT_EQ(prefix_round_trip(0, 10, h, l), FrameError::bad_head);
  EXPECT_EQ(prefix_round_trip(kMaxHead + 1, 10, h, l), FrameError::bad_head);
  EXPECT_EQ(prefix_round_trip(255, 10, h, l), FrameError::bad_head);
}

TEST(Frame, PrefixRejectsLengthOverLimit) {
  std::size_t h = 0;
  std::uint64_t l = 0;
  FrameLimits lim;
  lim.max_payload = 1u << 20;
  EXPECT_EQ(prefix_round_trip(12, 1u << 20, h, l, lim), FrameError::ok);
  EXPECT_EQ(prefix_round_trip(12, (1u << 20) + 1, h, l, lim), FrameError::too_long);
  std::array<std::byte, kStreamPrefix> b;
  b.fill(std::byte{0xff});
  EXPECT_NE(decode_prefix(b, FrameLimits{}, h, l), FrameError::ok);
}

TEST(Protocol, EagerIsCompactAndRoundTrips) {
  proto::Header h;
  h.type = proto::Type::eager;
  h.comm = 7;
  h.tag = 42;
  auto e = encoded(h);
  EXPECT_EQ(e.size, proto::kCompactHead);
  proto::Header out;
  ASSERT_EQ(proto::decode(e.span(), 1000, FrameLimits{}, out), nullptr);
  EXPECT_EQ(out.type, proto::Type::eager);
  EXPECT_EQ(out.comm, 7u);
  EXPECT_EQ(out.tag, 42);
  EXPECT_EQ(out.size, 1000u);  // an eager message's size is its payload's length
}

TEST(Protocol, ControlFramesRoundTripInFull) {
  for (auto t : {proto::Type::rts, proto::Type::cts, proto::Type::data, proto::Type::fin}) {
    proto::Header h{t, 3, -5, 123456789, 0x1122334455667788ull, 9};
    auto e = encoded(h);
    EXPECT_EQ(e.size, proto::kFullHead);
    proto::Header out;
    ASSERT_EQ(proto::decode(e.span(), t == proto::Type::data ? 77 : 0, FrameLimits{}, out), nullptr);
    EXPECT_EQ(out.type, t);
    EXPECT_EQ(out.comm, 3u);
    EXPECT_EQ(out.tag, -5);
    EXPECT_EQ(out.size, 123456789u);
    EXPECT_EQ(out.cookie, 0x1122334455667788ull);
    EXPECT_EQ(out.cookie2, 9u);
  }
}

TEST(Protocol, RejectsUnknownTypesAndWrongSizes) {
  proto::Header out;
  std::array<std::byte, proto::kFullHead> b{};
  for (std::uint8_t t : {0, 9, 99, 255}) {
    b[0] = std::byte{t};
    EXPECT_NE(proto::decode(b, 0, FrameLimits{}, out), nullptr) << int(t);
  }
  // abort: a control frame (no payload) naming a context and a rank.
  proto::Header a{proto::Type::abort, 9, 3, 0, 0, 0};
  proto::Encoded ea;
  proto::encode(a, ea);
  EXPECT_EQ(proto::decode(ea.span(), 0, FrameLimits{}, out), nullptr);
  EXPECT_EQ(out.type, proto::Type::abort);
  EXPECT_EQ(out.comm, 9u);
  EXPECT_EQ(out.tag, 3);
  EXPECT_NE(proto::decode(ea.span(), 1, FrameLimits{}, out), nullptr);
  // share and written (a large payload copied by both sides): control frames too.
  for (auto t : {proto::Type::share, proto::Type::written}) {
    proto::Header c{t, 5, 2, 77, 123456789, 0x7f0000001000};
    proto::Encoded ec;
    proto::encode(c, ec);
    EXPECT_EQ(proto::decode(ec.span(), 0, FrameLimits{}, out), nullptr);
    EXPECT_EQ(out.type, t);
    EXPECT_EQ(out.size, 77u);
    EXPECT_EQ(out.cookie, 123456789u);
    EXPECT_EQ(out.cookie2, 0x7f0000001000u);
    EXPECT_NE(proto::decode(ec.span(), 8, FrameLimits{}, out), nullptr) << "with a payload";
  }
  proto::Header h;
  h.type = proto::Type::eager;
  auto e = encoded(h);
  EXPECT_NE(proto::decode(std::span(e.bytes, proto::kFullHead), 0, FrameLimits{}, out), nullptr);  // eager in full
  h.type = proto::Type::rts;
  e = encoded(h);
  EXPECT_NE(proto::decode(std::span(e.bytes, proto::kCompactHead), 0, FrameLimits{}, out), nullptr);  // rts compact
  EXPECT_NE(proto::decode(std::span<const std::byte>(), 0, FrameLimits{}, out), nullptr);
}

TEST(Protocol, RejectsFieldsThatContradictTheType) {
  proto::Header out;
  for (auto t : {proto::Type::rts, proto::Type::cts, proto::Type::fin}) {
    proto::Header h{t, 0, 0, 10, 1, 2};
    EXPECT_NE(proto::decode(encoded(h).span(), 1, FrameLimits{}, out), nullptr);  // control frames carry no payload
  }
  FrameLimits lim;
  lim.max_payload = 1u << 20;
  proto::Header rts{proto::Type::rts, 0, 0, (1u << 20) + 1, 1, 2};
  EXPECT_NE(proto::decode(encoded(rts).span(), 0, lim, out), nullptr);  // announces too much
  rts.size = 1u << 20;
  EXPECT_EQ(proto::decode(encoded(rts).span(), 0, lim, out), nullptr);
}

TEST(Enforce, ABrokenInvariantIsAProtocolErrorWithFileLineAndCondition) {
  int peers = 2;
  EXPECT_NO_THROW(IPC_ENFORCE(peers == 2, "never"));
  try {
    IPC_ENFORCE(peers == 3, "rank 1 named " + std::to_string(peers) + " peers");
    FAIL() << "a false check went on";
  } catch (const ipc::ProtocolError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("rank 1 named 2 peers"), std::string::npos) << what;
    EXPECT_NE(what.find("peers == 3"), std::string::npos) << what;
    EXPECT_NE(what.find("frame_test.cpp:"), std::string::npos) << what;
  }
}
