#include "transport/shm/segment.hpp"

#include <unistd.h>

#include <new>

#include "base/errors.hpp"

namespace ipc::transport::shm {

std::size_t segment_bytes(std::uint32_t rings, std::size_t ring_bytes) {
  return sizeof(SegmentHeader) + rings * (sizeof(RingControl) + ring_bytes);
}

RingControl* Segment::control(std::uint32_t ring) const {
  auto* p = map_.base() + sizeof(SegmentHeader) + ring * (sizeof(RingControl) + ring_bytes());
  return reinterpret_cast<RingControl*>(p);
}

std::byte* Segment::data(std::uint32_t ring) const {
  return reinterpret_cast<std::byte*>(control(ring)) + sizeof(RingControl);
}

Segment Segment::create(const std::string& name, std::uint32_t rings, std::size_t ring_bytes) {
  Segment s;
  // Sparse: the header and the rings' controls are taken now, a ring's data when a
  // sender first uses it (prefault_ring), so that pairs that never talk cost nothing.
  s.map_ = base::Mapping::create(name, segment_bytes(rings, ring_bytes), false);
  if (auto why = s.map_.prefault(0, sizeof(SegmentHeader)); !why.empty()) throw Error(why);
  for (std::uint32_t r = 0; r < rings; ++r) {
    auto at = static_cast<std::size_t>(reinterpret_cast<std::byte*>(s.control(r)) - s.map_.base());
    if (auto why = s.map_.prefault(at, sizeof(RingControl)); !why.empty()) throw Error(why);
  }
  auto* h = new (s.map_.base()) SegmentHeader{};
  h->rings = rings;
  h->owner_pid = static_cast<std::uint32_t>(::getpid());
  h->ring_bytes = ring_bytes;
  h->sleepers.store(0);
  h->wants.store(0);
  h->awake.store(0);
  h->rung.store(0);
  h->unrung.store(0);
  for (std::uint32_t r = 0; r < rings; ++r) {
    init_ring(new (s.control(r)) RingControl{}, ring_bytes);
  }
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kSegmentMagic;
  return s;
}

std::string Segment::prefault_ring(std::uint32_t ring) const {
  return map_.prefault(static_cast<std::size_t>(data(ring) - map_.base()), ring_bytes());
}

Segment Segment::open(const std::string& name) {
  Segment s;
  s.map_ = base::Mapping::open(name, sizeof(SegmentHeader), false);
  auto* h = s.header();
  if (h->magic != kSegmentMagic || segment_bytes(h->rings, h->ring_bytes) != s.map_.size())
    throw Error("shm: segment " + name + " is not a valid ipc segment");
  return s;
}

}  // namespace ipc::transport::shm
