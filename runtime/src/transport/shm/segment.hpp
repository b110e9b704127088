// A rank's shared-memory segment: its inbound rings, one per rank of its node.
//
//   SegmentHeader (192 B) | RingControl (192 B) * rings | to a 4 KiB boundary | ring data * rings
//
// The receiving rank creates it (O_EXCL, mode 0600, name from the unguessable job id)
// and keeps its descriptor; a sender on the node maps it when it first needs it,
// through /proc/<pid>/fd/<fd> (or by the name while connecting, where /proc refuses
// that), and the name is unlinked at the end of start-up (or when the rank ends); a
// mapping outlives the name. A segment is sparse: its header and the rings' controls,
// side by side in its first pages (4 at 64 ranks), are present from the start; a
// ring's data pages from the first send on that ring, when the sender makes them all
// present at once (prefault_ring: a page fault on a ring's first lap would cost more
// than the message) and then sets the control's `started`, before which the consumer
// does not look at the ring. So shared memory grows with the pairs that talk, not
// with the square of the node's ranks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/mapping.hpp"
#include "transport/shm/ring.hpp"

namespace ipc::transport::shm {

inline constexpr std::uint64_t kSegmentMagic = 0x33676573637069ull;  // "ipcseg3"
inline constexpr std::size_t kSegmentPage = 4096;  // ring data starts at such a boundary

struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t rings;
  std::uint32_t owner_pid;
  std::uint64_t ring_bytes;
  // Read by every sender after every record; written only when the owner's threads
  // go to sleep or wake.
  alignas(kLine) std::atomic<std::int32_t> sleepers;  // > 0: ring the owner's doorbell...
  // ...and so for a frame whose concerns meet `wants_classes`, while `wants_count`
  // threads sleep for frames of those classes only (Frame::concerns); the classes are
  // a union, cleared when the count comes back to 0 (one word: kWantsCount per thread).
  std::atomic<std::uint64_t> wants;
  // Written by the owner's threads as they start and stop polling, read by senders
  // only when a sleeper may need their frame.
  alignas(kLine) std::atomic<std::int32_t> awake;  // ...unless > 0: its threads polling
  // 1: a sender rang and no thread of the owner has woken since: the others need not
  // (ShmTransport::ring_bell; cleared by a thread that ends its sleep, disarm_sleep).
  std::atomic<std::int32_t> rung;
  // 1: a sender left a frame for a thread that sleeps for its class unrung because a
  // thread polled (awake); the poller that stops looks at its rings once more.
  std::atomic<std::int32_t> unrung;
};
static_assert(sizeof(SegmentHeader) == 3 * kLine);

inline constexpr std::uint64_t kWantsCount = std::uint64_t{1} << 48;  // one selective sleeper
inline constexpr std::uint64_t kWantsClasses = kWantsCount - 1;

/// Bytes a segment of `rings` rings of `ring_bytes` occupies.
std::size_t segment_bytes(std::uint32_t rings, std::size_t ring_bytes);
/// Bytes of its header and controls, rounded up to kSegmentPage: where its data begins.
std::size_t controls_bytes(std::uint32_t rings);

class Segment {
 public:
  Segment() = default;
  /// Creates and maps a new segment. @throws ipc::Error naming it on failure.
  static Segment create(const std::string& name, std::uint32_t rings, std::size_t ring_bytes);
  /// Maps an existing one and checks its header. @throws ipc::Error naming it.
  static Segment open(const std::string& name);
  /// Maps the one that process `pid` created and holds as descriptor `fd` (its
  /// name may be gone), and checks its header and owner. @throws ipc::Error naming it.
  static Segment open_held(int pid, int fd, const std::string& name);

  /// Removes the name (the mapping stays). Idempotent.
  void unlink() { map_.unlink(); }
  SegmentHeader* header() const { return reinterpret_cast<SegmentHeader*>(map_.base()); }
  RingControl* control(std::uint32_t ring) const;
  std::byte* data(std::uint32_t ring) const;
  std::size_t ring_bytes() const { return header()->ring_bytes; }
  /// Makes ring `ring`'s data pages present; "" when done, else why not (/dev/shm full).
  std::string prefault_ring(std::uint32_t ring) const;
  const std::string& name() const { return map_.name(); }
  /// The creator's descriptor of it (open_held's `fd`), else -1.
  int fd() const { return map_.fd(); }
  explicit operator bool() const { return static_cast<bool>(map_); }

 private:
  void check(int pid) const;

  base::Mapping map_;
};

}  // namespace ipc::transport::shm
