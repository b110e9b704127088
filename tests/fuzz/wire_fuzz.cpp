// Frame headers and key-value messages as read off a socket.
#include <cstring>
#include <span>

#include "fuzz.hpp"
#include "core/protocol.hpp"
#include "wire/frame.hpp"
#include "wire/kv_protocol.hpp"

using namespace ipc::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  if (size >= kStreamPrefix) {
    FrameLimits lim;
    lim.max_payload = 1u << 20;
    std::size_t head = 0;
    std::uint64_t length = 0;
    if (decode_prefix(bytes.first<kStreamPrefix>(), lim, head, length) == FrameError::ok) {
      if (head == 0 || head > kMaxHead || length > lim.max_payload) __builtin_trap();
      if (size >= kStreamPrefix + head) {
        ipc::detail::proto::Header h;
        if (!ipc::detail::proto::decode(bytes.subspan(kStreamPrefix, head), length, lim, h)) {
          if (h.type == ipc::detail::proto::Type::eager && h.size != length) __builtin_trap();
          if (h.type == ipc::detail::proto::Type::rts && h.size > lim.max_payload) __builtin_trap();
        }
      }
    }
  }
  KvLimits kl;
  kl.max_body = 1u << 16;
  std::size_t at = 0;
  while (at < size) {
    KvMessage m;
    std::size_t used = 0;
    auto r = decode(bytes.subspan(at), kl, m, used);
    if (r != KvDecode::ok) break;
    if (used == 0 || used > size - at) __builtin_trap();
    auto again = encode(m);  // what decodes must encode back to the same bytes
    if (again.size() != used || std::memcmp(again.data(), data + at, used) != 0) __builtin_trap();
    at += used;
  }
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  for (auto t : {ipc::detail::proto::Type::eager, ipc::detail::proto::Type::rts}) {
    ipc::detail::proto::Header h;
    h.type = t;
    h.size = 100;
    ipc::detail::proto::Encoded e;
    ipc::detail::proto::encode(h, e);
    std::vector<std::uint8_t> f(kStreamPrefix + e.size);
    encode_prefix(e.size, t == ipc::detail::proto::Type::eager ? 100 : 0,
                  std::span<std::byte, kStreamPrefix>(reinterpret_cast<std::byte*>(f.data()), kStreamPrefix));
    std::memcpy(f.data() + kStreamPrefix, e.bytes, e.size);
    out.push_back(f);
  }
  for (auto m : {KvMessage{KvOp::put, {"card/0", "node=a"}}, KvMessage{KvOp::fence, {}},
                 KvMessage{KvOp::fenced, {"a", "b", "c", "d"}}}) {
    auto e = encode(m);
    out.emplace_back(reinterpret_cast<std::uint8_t*>(e.data()), reinterpret_cast<std::uint8_t*>(e.data()) + e.size());
  }
  return out;
}
