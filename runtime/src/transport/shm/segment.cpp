#include "transport/shm/segment.hpp"

#include <unistd.h>

#include <new>

#include "base/errors.hpp"

namespace ipc::transport::shm {

std::size_t controls_bytes(std::uint32_t rings) {
  std::size_t n = sizeof(SegmentHeader) + rings * sizeof(RingControl);
  return (n + kSegmentPage - 1) / kSegmentPage * kSegmentPage;
}

std::size_t segment_bytes(std::uint32_t rings, std::size_t ring_bytes) {
  return controls_bytes(rings) + rings * ring_bytes;
}

RingControl* Segment::control(std::uint32_t ring) const {
  return reinterpret_cast<RingControl*>(map_.base() + sizeof(SegmentHeader) + ring * sizeof(RingControl));
}

std::byte* Segment::data(std::uint32_t ring) const {
  return map_.base() + controls_bytes(header()->rings) + ring * ring_bytes();
}

Segment Segment::create(const std::string& name, std::uint32_t rings, std::size_t ring_bytes) {
  Segment s;
  // Sparse: the header and the rings' controls (together at the start) are taken now,
  // a ring's data when a sender first uses it (prefault_ring), so that pairs that
  // never talk cost nothing.
  s.map_ = base::Mapping::create(name, segment_bytes(rings, ring_bytes), false, true);
  if (auto why = s.map_.prefault(0, controls_bytes(rings)); !why.empty()) throw Error(why);
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
  s.check(0);
  return s;
}

Segment Segment::open_held(int pid, int fd, const std::string& name) {
  Segment s;
  s.map_ = base::Mapping::open_held(pid, fd, name, sizeof(SegmentHeader));
  s.check(pid);
  return s;
}

void Segment::check(int pid) const {
  auto* h = header();
  if (h->magic != kSegmentMagic || segment_bytes(h->rings, h->ring_bytes) != map_.size() ||
      (pid > 0 && h->owner_pid != static_cast<std::uint32_t>(pid)))
    throw Error("shm: segment " + map_.name() + " is not a valid ipc segment" +
                (pid > 0 ? " of process " + std::to_string(pid) : std::string()));
}

}  // namespace ipc::transport::shm
