// A rank's shared-memory segment: its inbound rings, one per rank of its node.
//
//   SegmentHeader (128 B) | { RingControl (128 B) | ring data } * rings
//
// The receiving rank creates it (O_EXCL, mode 0600, name from the unguessable job id),
// every sender on the node maps it, and it is unlinked as soon as they all have (or
// when the rank ends); a mapping outlives the name. A segment is sparse: its header and
// the rings' controls are present from the start, a ring's data pages from the first
// send on that ring, when the sender makes them all present at once (prefault_ring: a
// page fault on a ring's first lap would cost more than the message). So shared memory
// grows with the pairs that talk, not with the square of the node's ranks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/mapping.hpp"
#include "transport/shm/ring.hpp"

namespace ipc::transport::shm {

inline constexpr std::uint64_t kSegmentMagic = 0x31676573637069ull;  // "ipcseg1"

struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t rings;
  std::uint32_t owner_pid;
  std::uint64_t ring_bytes;
  alignas(kLine) std::atomic<std::int32_t> sleepers;  // > 0: ring the owner's doorbell...
  std::atomic<std::int32_t> awake;                     // ...unless > 0: its threads polling
  // 1: a sender rang and no thread of the owner has woken since: the others need not
  // (ShmTransport::ring_bell; cleared by a thread that ends its sleep, disarm_sleep).
  std::atomic<std::int32_t> rung;
};
static_assert(sizeof(SegmentHeader) == 2 * kLine);

/// Bytes a segment of `rings` rings of `ring_bytes` occupies.
std::size_t segment_bytes(std::uint32_t rings, std::size_t ring_bytes);

class Segment {
 public:
  Segment() = default;
  /// Creates and maps a new segment. @throws ipc::Error naming it on failure.
  static Segment create(const std::string& name, std::uint32_t rings, std::size_t ring_bytes);
  /// Maps an existing one and checks its header. @throws ipc::Error naming it.
  static Segment open(const std::string& name);

  /// Removes the name (the mapping stays). Idempotent.
  void unlink() { map_.unlink(); }
  SegmentHeader* header() const { return reinterpret_cast<SegmentHeader*>(map_.base()); }
  RingControl* control(std::uint32_t ring) const;
  std::byte* data(std::uint32_t ring) const;
  std::size_t ring_bytes() const { return header()->ring_bytes; }
  /// Makes ring `ring`'s data pages present; "" when done, else why not (/dev/shm full).
  std::string prefault_ring(std::uint32_t ring) const;
  const std::string& name() const { return map_.name(); }

 private:
  base::Mapping map_;
};

}  // namespace ipc::transport::shm
