// Frames: the unit every transport moves between ranks.
//
// A frame is a head of 1 to kMaxHead bytes and a payload of `length` bytes. The head
// is the engine's protocol header (core/protocol.hpp, its one encoder); transports
// store and deliver it as opaque bytes and never read it. What a transport knows of
// a frame is the head's size and the payload's length, and it frames its medium with
// them in its own way: shm in ring records, TCP with the StreamPrefix below.
//
// Hosts are little-endian (checked at compile time), so sizes travel in host order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace ipc::wire {

static_assert(std::endian::native == std::endian::little, "ipc frames travel in little-endian order");

/// The largest head a frame may have.
inline constexpr std::size_t kMaxHead = 40;

struct FrameLimits {
  std::uint64_t max_payload = std::uint64_t{1} << 40;  // 1 TiB (IPC_MAX_MESSAGE)
};

/// Every sleeping thread of the receiver may need a frame whose `concerns` are these.
inline constexpr std::uint64_t kConcernsAll = ~std::uint64_t{0};

/// An outgoing frame. The head is copied by the transport before send() returns; the
/// payload stays the sender's until the send completes. `concerns`: the classes of
/// waits at the receiver that this frame may end (bits its sender chose, kConcernsAll
/// when any wait may need it), for transports that wake sleeping threads selectively.
struct Frame {
  std::span<const std::byte> head;
  const void* payload = nullptr;
  std::uint64_t length = 0;
  std::uint64_t concerns = kConcernsAll;
};

/// Before every frame on a byte stream: 8 bytes, the head's size in the low byte and
/// the payload's length in the 56 bits above.
inline constexpr std::size_t kStreamPrefix = 8;

enum class FrameError { ok, bad_head, too_long };
std::string to_string(FrameError e);

/// Writes the prefix of a frame with `head` bytes of head and `length` of payload.
inline void encode_prefix(std::size_t head, std::uint64_t length, std::span<std::byte, kStreamPrefix> out) noexcept {
  std::uint64_t v = (length << 8) | static_cast<std::uint64_t>(head);
  std::memcpy(out.data(), &v, kStreamPrefix);
}

/// Reads a prefix off the wire. Never trusts it: a head size outside 1..kMaxHead or a
/// payload over the limit is an error, and `head`/`length` are then unspecified.
inline FrameError decode_prefix(std::span<const std::byte, kStreamPrefix> in, const FrameLimits& limits,
                                std::size_t& head, std::uint64_t& length) noexcept {
  std::uint64_t v;
  std::memcpy(&v, in.data(), kStreamPrefix);
  head = static_cast<std::size_t>(v & 0xff);
  length = v >> 8;
  if (head == 0 || head > kMaxHead) return FrameError::bad_head;
  if (length > limits.max_payload) return FrameError::too_long;
  return FrameError::ok;
}

}  // namespace ipc::wire
