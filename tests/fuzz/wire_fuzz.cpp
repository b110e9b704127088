// Frame headers and key-value messages as read off a socket.
#include <cstring>
#include <span>

#include "fuzz.hpp"
#include "wire/frame.hpp"
#include "wire/kv_protocol.hpp"

using namespace ipc::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  if (size >= kFrameHeaderSize) {
    FrameHeader h;
    FrameLimits lim;
    lim.max_payload = 1u << 20;
    if (decode_header(bytes.first<kFrameHeaderSize>(), lim, h) == FrameError::ok) {
      if (h.type == FrameType::eager && h.length > lim.max_payload) __builtin_trap();
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
  FrameHeader h;
  h.type = FrameType::eager;
  h.length = h.size = 100;
  std::vector<std::uint8_t> f(kFrameHeaderSize);
  std::memcpy(f.data(), &h, kFrameHeaderSize);
  out.push_back(f);
  for (auto m : {KvMessage{KvOp::put, {"card/0", "node=a"}}, KvMessage{KvOp::fence, {}},
                 KvMessage{KvOp::fenced, {"a", "b", "c", "d"}}}) {
    auto e = encode(m);
    out.emplace_back(reinterpret_cast<std::uint8_t*>(e.data()), reinterpret_cast<std::uint8_t*>(e.data()) + e.size());
  }
  return out;
}
