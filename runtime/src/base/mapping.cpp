#include "base/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include "base/errors.hpp"

namespace ipc::base {
namespace {

std::string mib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1 << 20));
  return text;
}

// Maps `size` bytes of `fd` (closing it unless `keep`).
void* map_fd(int fd, std::size_t size, bool populate, const std::string& name, bool keep = false) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
  int e = errno;
  if (!keep || base == MAP_FAILED) ::close(fd);
  if (base == MAP_FAILED) throw Error("shm: cannot map segment " + name + ": " + std::strerror(e));
  return base;
}

// The error of a /dev/shm without room for `size` bytes of segment `name`.
std::string space_error(const std::string& name, std::size_t size) {
  struct statvfs vfs {};
  std::string room;
  if (::statvfs("/dev/shm", &vfs) == 0)
    room = ", which has " + mib(static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize)) + " free of " +
           mib(static_cast<double>(vfs.f_blocks) * static_cast<double>(vfs.f_frsize));
  return "shm: segment " + name + " needs " + mib(static_cast<double>(size)) + " in /dev/shm" + room +
         ": give /dev/shm more room (a container's --shm-size, mount -o remount,size=...), start fewer ranks per "
         "host, or leave shared memory out (--transports tcp)";
}

}  // namespace

void Mapping::require_space(const std::string& name, std::size_t size, std::size_t total) {
  struct statvfs vfs {};
  if (::statvfs("/dev/shm", &vfs) != 0) return;  // nothing to tell by
  if (static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize) < static_cast<double>(total))
    throw Error(space_error(name, size));
}

std::string Mapping::prefault(std::size_t offset, std::size_t len) const {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14
#endif
  if (len == 0) return {};
  auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::size_t from = offset / page * page, to = std::min(size_, (offset + len + page - 1) / page * page);
  if (::madvise(static_cast<char*>(base_) + from, to - from, MADV_POPULATE_WRITE) == 0) return {};
  if (errno == EINVAL || errno == ENOSYS) return {};  // an older kernel: pages come at first touch
  return space_error(name_, to - from);
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(size_, o.size_);
  std::swap(name_, o.name_);
  std::swap(owner_, o.owner_);
  std::swap(fd_, o.fd_);
  return *this;
}

Mapping::~Mapping() {
  unlink();
  if (fd_ >= 0) ::close(fd_);
  if (base_) ::munmap(base_, size_);
}

Mapping Mapping::map_whole(int fd, const std::string& name, std::size_t min_size, bool populate) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) < min_size) {
    ::close(fd);
    throw Error("shm: segment " + name + " is too small");
  }
  Mapping m;
  m.name_ = name;
  m.size_ = static_cast<std::size_t>(st.st_size);
  m.base_ = map_fd(fd, m.size_, populate, name);
  return m;
}

void Mapping::unlink() {
  if (!owner_) return;
  owner_ = false;
  ::shm_unlink(name_.c_str());
}

Mapping Mapping::create(const std::string& name, std::size_t size, bool populate, bool keep_fd) {
  Mapping m;
  m.name_ = name;
  m.size_ = size;
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("shm: cannot create segment " + name + ": " + std::strerror(errno));
  m.owner_ = true;  // from here on the destructor unlinks it
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("shm: cannot size segment " + name + " to " + std::to_string(size) + " bytes: " + std::strerror(e));
  }
  if (populate) {
    // Pages are taken now, so that a /dev/shm too small for the job is an error here
    // rather than a SIGBUS at the first touch of a page it could not give.
    int e = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (e == ENOSPC || e == ENOMEM) {
      ::close(fd);
      throw Error(space_error(name, size));
    }
  }
  m.base_ = map_fd(fd, size, populate, name, keep_fd);
  if (keep_fd) m.fd_ = fd;
  return m;
}

Mapping Mapping::open(const std::string& name, std::size_t min_size, bool populate) {
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) throw Error("shm: cannot open segment " + name + ": " + std::strerror(errno));
  return map_whole(fd, name, min_size, populate);
}

std::string Mapping::held_path(int pid, int fd) {
  return "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
}

namespace {
// Not blocking, no controlling terminal: whatever a reused pid's descriptor is now, the
// open returns at once, and a file that is no segment fails open_held's checks.
int open_held_path(const std::string& path) { return ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); }
}  // namespace

bool Mapping::held_openable(int pid, int fd) {
  int f = pid > 0 && fd >= 0 ? open_held_path(held_path(pid, fd)) : -1;
  if (f >= 0) ::close(f);
  return f >= 0;
}

Mapping Mapping::open_held(int pid, int fd, const std::string& name, std::size_t min_size) {
  const std::string path = held_path(pid, fd);
  int f = open_held_path(path);
  if (f < 0) throw Error("shm: cannot open segment " + name + " through " + path + ": " + std::strerror(errno));
  // The file it holds must be that segment (a pid of another namespace, or one reused,
  // may name another process's descriptor): its link ends with the name, unlinked or not.
  char link[4096];
  ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  std::string_view held(link, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (held.ends_with(" (deleted)")) held.remove_suffix(10);
  if (held.size() < name.size() || held.substr(held.size() - name.size()) != name) {
    ::close(f);
    throw Error("shm: " + path + " is not segment " + name);
  }
  return map_whole(f, name, min_size, false);
}

}  // namespace ipc::base
