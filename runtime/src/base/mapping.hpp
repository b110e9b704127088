// A named POSIX shared-memory object mapped whole: what the transport's segments and
// the node group's segment have in common. The creator owns the name and removes it
// at unlink() or destruction; every holder unmaps at destruction. A creator may keep
// the descriptor, through which the others can still open it after the unlink
// (open_held).
#pragma once

#include <cstddef>
#include <string>

namespace ipc::base {

class Mapping {
 public:
  Mapping() = default;
  /// Creates `name` (exclusive, mode 0600) of `size` bytes and maps it; `populate`:
  /// every page present at once; `keep_fd`: its descriptor stays open (fd()), so that
  /// processes of the same user can still open it by held_path() once the name is
  /// gone. @throws ipc::Error naming it.
  static Mapping create(const std::string& name, std::size_t size, bool populate, bool keep_fd = false);
  /// Maps an existing `name` whole (at least `min_size` bytes). @throws ipc::Error.
  static Mapping open(const std::string& name, std::size_t min_size, bool populate);
  /// Maps whole the file that descriptor `fd` of process `pid` holds (at least
  /// `min_size` bytes; `name` for errors), through held_path(): with the name unlinked,
  /// as long as that process lives. @throws ipc::Error naming the path and why.
  static Mapping open_held(int pid, int fd, const std::string& name, std::size_t min_size);
  /// /proc/<pid>/fd/<fd>.
  static std::string held_path(int pid, int fd);
  /// Whether this process may open descriptor `fd` of process `pid` (held_path()).
  static bool held_openable(int pid, int fd);

  /// Checks that /dev/shm has `total` bytes free for segments like `name` (of `size`
  /// bytes each), without taking them. @throws ipc::Error naming /dev/shm, the bytes
  /// needed and what to do.
  static void require_space(const std::string& name, std::size_t size, std::size_t total);
  /// Makes the pages of [offset, offset + len) present and writable now (taking them
  /// from /dev/shm), so that no later touch faults; "" when done (or when the kernel
  /// cannot say: older than Linux 5.14, the pages then come at first touch), else why
  /// not (/dev/shm is full: a touch would have been SIGBUS).
  std::string prefault(std::size_t offset, std::size_t len) const;
  Mapping(Mapping&& o) noexcept { *this = std::move(o); }
  Mapping& operator=(Mapping&& o) noexcept;
  ~Mapping();

  /// Removes the name (the mapping stays). Idempotent; nothing for a non-owner.
  void unlink();
  std::byte* base() const { return static_cast<std::byte*>(base_); }
  std::size_t size() const { return size_; }
  const std::string& name() const { return name_; }
  /// The descriptor kept by create(keep_fd), else -1.
  int fd() const { return fd_; }
  explicit operator bool() const { return base_ != nullptr; }

 private:
  // Maps the whole of the opened `fd` (closing it), a regular file of at least
  // `min_size` bytes.
  static Mapping map_whole(int fd, const std::string& name, std::size_t min_size, bool populate);

  void* base_ = nullptr;
  std::size_t size_ = 0;
  std::string name_;
  bool owner_ = false;
  int fd_ = -1;
};

}  // namespace ipc::base
