#include "wire/frame.hpp"

#include <cstring>

namespace ipc::wire {

std::string to_string(FrameError e) {
  switch (e) {
    case FrameError::ok: return "ok";
    case FrameError::bad_head: return "frame head size out of range";
    case FrameError::too_long: return "frame payload longer than the limit";
  }
  return "unknown frame error";
}

void encode_prefix(std::size_t head, std::uint64_t length, std::span<std::byte, kStreamPrefix> out) noexcept {
  std::uint64_t v = (length << 8) | static_cast<std::uint64_t>(head);
  std::memcpy(out.data(), &v, kStreamPrefix);
}

FrameError decode_prefix(std::span<const std::byte, kStreamPrefix> in, const FrameLimits& limits, std::size_t& head,
                         std::uint64_t& length) noexcept {
  std::uint64_t v;
  std::memcpy(&v, in.data(), kStreamPrefix);
  head = static_cast<std::size_t>(v & 0xff);
  length = v >> 8;
  if (head == 0 || head > kMaxHead) return FrameError::bad_head;
  if (length > limits.max_payload) return FrameError::too_long;
  return FrameError::ok;
}

}  // namespace ipc::wire
