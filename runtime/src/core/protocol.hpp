// The engine's protocol header: what a frame's head says. Its one encoder and decoder
// live here; transports carry heads as opaque bytes (transport/transport.hpp).
//
// Two forms, told apart by the first byte (the frame type):
//   compact (12 bytes)  eager: type, flags, reserved(2), comm, tag
//   full    (40 bytes)  rts, cts, data, fin, abort, share, written: type, flags, reserved(2), comm, tag,
//                       reserved(4), size, cookie, cookie2
// The payload's length travels with the frame (the transport's framing), so an eager
// message needs nothing more: a message of up to 36 bytes then fits one 64-byte
// shared-memory record (16-byte record head + 12 + 36) and costs a TCP message 20
// bytes of framing instead of 48. The source rank is the authenticated peer the
// transport names, never a field a peer could forge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "wire/frame.hpp"

namespace ipc::detail::proto {

enum class Type : std::uint8_t {
  eager = 1,  // a whole message: envelope + payload
  rts = 2,    // ready to send: envelope + size; cookie = sender's request, cookie2 = its buffer
  cts = 3,    // clear to send: cookie = sender's request, cookie2 = receiver's
  data = 4,   // rendezvous payload for the receiver's request `cookie`
  fin = 5,    // receiver finished a one-sided read of rendezvous `cookie` (or declined it)
  abort = 6,  // the collectives of context `comm` are abandoned: rank `tag` was lost
  // A large rendezvous copied by both sides (transport::kSharedCopy):
  share = 7,    // receiver: write the second part of `cookie` to address `cookie2`; offer in
                // slot `tag`, the receive's id in `size`
  written = 8,  // sender: the part offered for receive `cookie` is there (`size` bytes; 0:
                // declined, the receiver reads it)
};

struct Header {
  Type type{};
  std::uint32_t comm = 0;  // communicator context
  std::int32_t tag = 0;
  std::uint64_t size = 0;  // rts, cts: the message's size
  std::uint64_t cookie = 0;
  std::uint64_t cookie2 = 0;
};

inline constexpr std::size_t kCompactHead = 12;
inline constexpr std::size_t kFullHead = 40;
static_assert(kFullHead <= wire::kMaxHead);

/// An encoded head, ready for Endpoint::send.
struct Encoded {
  alignas(8) std::byte bytes[kFullHead];
  std::size_t size = 0;
  std::span<const std::byte> span() const { return {bytes, size}; }
};

/// The one encoder: the compact form for eager frames, the full one otherwise.
inline void encode(const Header& h, Encoded& out) noexcept {
  std::uint8_t lead[4] = {static_cast<std::uint8_t>(h.type), 0, 0, 0};
  std::memcpy(out.bytes, lead, 4);
  std::memcpy(out.bytes + 4, &h.comm, 4);
  std::memcpy(out.bytes + 8, &h.tag, 4);
  if (h.type == Type::eager) {
    out.size = kCompactHead;
    return;
  }
  std::uint32_t zero = 0;
  std::memcpy(out.bytes + 12, &zero, 4);
  std::memcpy(out.bytes + 16, &h.size, 8);
  std::memcpy(out.bytes + 24, &h.cookie, 8);
  std::memcpy(out.bytes + 32, &h.cookie2, 8);
  out.size = kFullHead;
}

/// Decodes and validates a head that arrived with `length` payload bytes. Returns
/// null when it is well formed, else what is wrong with it (for the peer-lost report).
inline const char* decode(std::span<const std::byte> in, std::uint64_t length, const wire::FrameLimits& limits,
                          Header& h) noexcept {
  if (in.size() == kCompactHead && in[0] == std::byte{static_cast<std::uint8_t>(Type::eager)}) {
    h.type = Type::eager;  // the common case first
    std::memcpy(&h.comm, in.data() + 4, 4);
    std::memcpy(&h.tag, in.data() + 8, 4);
    h.size = length;
    return nullptr;
  }
  if (in.empty()) return "empty frame head";
  h.type = static_cast<Type>(in[0]);
  if (h.type < Type::eager || h.type > Type::written) return "unknown frame type";
  if (h.type == Type::eager || in.size() != kFullHead) return "frame head of the wrong size for its type";
  std::memcpy(&h.comm, in.data() + 4, 4);
  std::memcpy(&h.tag, in.data() + 8, 4);
  std::memcpy(&h.size, in.data() + 16, 8);
  std::memcpy(&h.cookie, in.data() + 24, 8);
  std::memcpy(&h.cookie2, in.data() + 32, 8);
  if (h.type == Type::data) return nullptr;  // checked against the receive it names
  if (length != 0) return "control frame with a payload";
  if (h.type == Type::rts && h.size > limits.max_payload) return "announced message longer than IPC_MAX_MESSAGE";
  return nullptr;
}

/// Where a rendezvous payload copied by both sides is cut (share): the receiver reads
/// the bytes before it, the sender writes those from it; a page boundary.
inline std::uint64_t shared_part(std::uint64_t size) noexcept { return (size / 2 + 4095) & ~std::uint64_t{4095}; }

/// The class of waits that a frame of context `comm` may end (wire::Frame::concerns,
/// Engine::wait): one of 47 bits, so that up to 47 consecutive context numbers (an
/// Rpc's requests and replies) fall apart.
inline std::uint64_t concern_of(std::uint32_t comm) noexcept { return std::uint64_t{1} << (comm % 47); }

/// An eager message, rendezvous data or a part written ends a receive of its context,
/// a read-finished a send; an offer of a part to write is for a sender that waits for
/// its send (it is taken back from one that does not come). The others need the
/// receiving rank to act whoever waits there (answer a ready-to-send, send what a
/// clear-to-send asks for, abandon collectives).
inline std::uint64_t concerns(const Header& h) noexcept {
  switch (h.type) {
    case Type::eager:
    case Type::data:
    case Type::fin:
    case Type::share:
    case Type::written:
      return concern_of(h.comm);
    default:
      return wire::kConcernsAll;
  }
}

}  // namespace ipc::detail::proto
