// Engine frames: the unit every transport moves between ranks.
//
// A frame is a fixed 48-byte header followed by `length` payload bytes. Transports
// frame their byte streams with it (they read `length`, nothing else); the engine
// gives the other fields their meaning. Hosts are little-endian (checked at compile
// time), so the header travels in host order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ipc::wire {

static_assert(std::endian::native == std::endian::little,
              "ipc frames travel in little-endian order");

enum class FrameType : std::uint8_t {
  eager = 1,  // a whole message: envelope + payload
  rts = 2,    // ready to send: envelope + size; payload follows after a cts
  cts = 3,    // clear to send: cookie = sender's request, cookie2 = receiver's
  data = 4,   // rendezvous payload for the receiver's request `cookie`
  fin = 5,    // receiver finished a one-sided read of rendezvous `cookie`
};

struct FrameHeader {
  FrameType type{};
  std::uint8_t flags = 0;
  std::uint16_t reserved = 0;
  std::uint32_t comm = 0;     // communicator context
  std::int32_t source = 0;    // sending rank
  std::int32_t tag = 0;
  std::uint64_t length = 0;   // payload bytes that follow this header
  std::uint64_t size = 0;     // message size (eager: == length; rts: announced)
  std::uint64_t cookie = 0;   // request ids, meaning by type (see FrameType)
  std::uint64_t cookie2 = 0;
};
static_assert(sizeof(FrameHeader) == 48);
inline constexpr std::size_t kFrameHeaderSize = sizeof(FrameHeader);

struct FrameLimits {
  std::uint64_t max_payload = std::uint64_t{1} << 40;  // 1 TiB
};

enum class FrameError { ok, bad_type, too_long, inconsistent };
std::string to_string(FrameError e);

/// Encodes `h` into exactly kFrameHeaderSize bytes at `out`.
void encode_header(const FrameHeader& h, std::span<std::byte, kFrameHeaderSize> out) noexcept;

/// Decodes and validates a header read off the wire. Never trusts a length: a type
/// out of range, a payload over the limit or fields that contradict the type are
/// errors, and `out` is left unspecified.
FrameError decode_header(std::span<const std::byte, kFrameHeaderSize> in, const FrameLimits& limits,
                         FrameHeader& out) noexcept;

}  // namespace ipc::wire
