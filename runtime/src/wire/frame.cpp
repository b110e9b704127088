#include "wire/frame.hpp"

#include <cstring>

namespace ipc::wire {

std::string to_string(FrameError e) {
  switch (e) {
    case FrameError::ok: return "ok";
    case FrameError::bad_type: return "unknown frame type";
    case FrameError::too_long: return "frame payload longer than the limit";
    case FrameError::inconsistent: return "frame fields contradict its type";
  }
  return "unknown frame error";
}

void encode_header(const FrameHeader& h, std::span<std::byte, kFrameHeaderSize> out) noexcept {
  std::memcpy(out.data(), &h, kFrameHeaderSize);
}

FrameError decode_header(std::span<const std::byte, kFrameHeaderSize> in, const FrameLimits& limits,
                         FrameHeader& out) noexcept {
  std::memcpy(&out, in.data(), kFrameHeaderSize);
  switch (out.type) {
    case FrameType::eager:
      if (out.length > limits.max_payload) return FrameError::too_long;
      if (out.size != out.length) return FrameError::inconsistent;
      return FrameError::ok;
    case FrameType::data:
      if (out.length > limits.max_payload) return FrameError::too_long;
      return FrameError::ok;
    case FrameType::rts:
      if (out.size > limits.max_payload) return FrameError::too_long;
      return out.length == 0 ? FrameError::ok : FrameError::inconsistent;
    case FrameType::cts:
    case FrameType::fin:
      return out.length == 0 ? FrameError::ok : FrameError::inconsistent;
  }
  return FrameError::bad_type;
}

}  // namespace ipc::wire
