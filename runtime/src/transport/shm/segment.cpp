#include "transport/shm/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "ipc/errors.hpp"

namespace ipc::transport::shm {

std::size_t segment_bytes(std::uint32_t rings, std::size_t ring_bytes) {
  return sizeof(SegmentHeader) + rings * (sizeof(RingControl) + ring_bytes);
}

namespace {

// Maps `size` bytes of `fd` (closing it) with every page present at once.
void* map_segment(int fd, std::size_t size, const std::string& name) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (base == MAP_FAILED) throw Error("shm: cannot map segment " + name + ": " + std::strerror(e));
  return base;
}

}  // namespace

Segment& Segment::operator=(Segment&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(size_, o.size_);
  std::swap(name_, o.name_);
  std::swap(owner_, o.owner_);
  return *this;
}

Segment::~Segment() {
  if (owner_) unlink();
  if (base_) ::munmap(base_, size_);
}

void Segment::unlink() {
  if (!owner_) return;
  owner_ = false;
  ::shm_unlink(name_.c_str());
}

RingControl* Segment::control(std::uint32_t ring) const {
  auto* p = static_cast<std::byte*>(base_) + sizeof(SegmentHeader) + ring * (sizeof(RingControl) + ring_bytes());
  return reinterpret_cast<RingControl*>(p);
}

std::byte* Segment::data(std::uint32_t ring) const {
  return reinterpret_cast<std::byte*>(control(ring)) + sizeof(RingControl);
}

Segment Segment::create(const std::string& name, std::uint32_t rings, std::size_t ring_bytes) {
  Segment s;
  s.name_ = name;
  s.size_ = segment_bytes(rings, ring_bytes);
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("shm: cannot create segment " + name + ": " + std::strerror(errno));
  s.owner_ = true;  // from here on the destructor unlinks it
  if (::ftruncate(fd, static_cast<off_t>(s.size_)) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("shm: cannot size segment " + name + " to " + std::to_string(s.size_) + " bytes: " + std::strerror(e));
  }
  s.base_ = map_segment(fd, s.size_, name);
  auto* h = new (s.base_) SegmentHeader{};
  h->rings = rings;
  h->owner_pid = static_cast<std::uint32_t>(::getpid());
  h->ring_bytes = ring_bytes;
  h->sleepers.store(0);
  for (std::uint32_t r = 0; r < rings; ++r) {
    init_ring(new (s.control(r)) RingControl{}, ring_bytes);
  }
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kSegmentMagic;
  return s;
}

Segment Segment::open(const std::string& name) {
  Segment s;
  s.name_ = name;
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) throw Error("shm: cannot open segment " + name + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < sizeof(SegmentHeader)) {
    ::close(fd);
    throw Error("shm: segment " + name + " is too small");
  }
  s.size_ = static_cast<std::size_t>(st.st_size);
  s.base_ = map_segment(fd, s.size_, name);
  auto* h = s.header();
  if (h->magic != kSegmentMagic || segment_bytes(h->rings, h->ring_bytes) != s.size_)
    throw Error("shm: segment " + name + " is not a valid ipc segment");
  return s;
}

}  // namespace ipc::transport::shm
