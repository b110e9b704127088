#include <gtest/gtest.h>

#include <cstring>

#include "wire/kv_protocol.hpp"

using namespace ipc::wire;

namespace {

std::vector<std::byte> raw(std::initializer_list<std::uint32_t> words, std::uint8_t op_after_first = 0) {
  (void)op_after_first;
  std::vector<std::byte> b;
  for (auto w : words) {
    auto n = b.size();
    b.resize(n + 4);
    std::memcpy(b.data() + n, &w, 4);
  }
  return b;
}

// body length | op | count | parts... built by hand
std::vector<std::byte> message(std::uint32_t body, std::uint8_t op, std::uint32_t count,
                               const std::vector<std::byte>& rest) {
  auto b = raw({body});
  b.push_back(static_cast<std::byte>(op));
  auto c = raw({count});
  b.insert(b.end(), c.begin(), c.end());
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

}  // namespace

TEST(KvProtocol, RoundTripAndPrefixesNeedMore) {
  KvMessage m{KvOp::put, {"card/3", std::string("a\0b", 3), ""}};
  auto bytes = encode(m);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    KvMessage out;
    std::size_t used = 0;
    EXPECT_EQ(decode(std::span(bytes.data(), n), KvLimits{}, out, used), KvDecode::need_more) << n;
  }
  KvMessage out;
  std::size_t used = 0;
  ASSERT_EQ(decode(bytes, KvLimits{}, out, used), KvDecode::ok);
  EXPECT_EQ(used, bytes.size());
  EXPECT_EQ(out.op, KvOp::put);
  EXPECT_EQ(out.parts, m.parts);
}

TEST(KvProtocol, TwoMessagesBackToBack) {
  auto bytes = encode({KvOp::get, {"x"}});
  encode({KvOp::fence, {}}, bytes);
  KvMessage out;
  std::size_t used = 0;
  ASSERT_EQ(decode(bytes, KvLimits{}, out, used), KvDecode::ok);
  EXPECT_EQ(out.op, KvOp::get);
  ASSERT_EQ(decode(std::span(bytes).subspan(used), KvLimits{}, out, used), KvDecode::ok);
  EXPECT_EQ(out.op, KvOp::fence);
}

TEST(KvProtocol, MalformedLengths) {
  KvMessage out;
  std::size_t used = 0;
  std::string why;
  // body shorter than op + count
  EXPECT_EQ(decode(raw({3, 0}), KvLimits{}, out, used, &why), KvDecode::malformed);
  // body longer than the limit: refused before waiting for the bytes
  KvLimits small;
  small.max_body = 100;
  EXPECT_EQ(decode(raw({101}), small, out, used, &why), KvDecode::malformed);
  EXPECT_EQ(decode(raw({0xffffffffu}), KvLimits{}, out, used, &why), KvDecode::malformed);
  // part count larger than the body could hold
  EXPECT_EQ(decode(message(5 + 4, 1, 1000, raw({0})), KvLimits{}, out, used, &why), KvDecode::malformed);
  // a part running past the body
  EXPECT_EQ(decode(message(5 + 4, 1, 1, raw({50})), KvLimits{}, out, used, &why), KvDecode::malformed);
  // trailing bytes after the last part
  EXPECT_EQ(decode(message(5 + 8, 1, 1, raw({0, 7})), KvLimits{}, out, used, &why), KvDecode::malformed);
  // unknown operation
  EXPECT_EQ(decode(message(5, 77, 0, {}), KvLimits{}, out, used, &why), KvDecode::malformed);
  EXPECT_FALSE(why.empty());
}
