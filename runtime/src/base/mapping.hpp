// A named POSIX shared-memory object mapped whole: what the transport's segments and
// the node group's segment have in common. The creator owns the name and removes it
// at unlink() or destruction; every holder unmaps at destruction.
#pragma once

#include <cstddef>
#include <string>

namespace ipc::base {

class Mapping {
 public:
  Mapping() = default;
  /// Creates `name` (exclusive, mode 0600) of `size` bytes and maps it; `populate`:
  /// every page present at once. @throws ipc::Error naming it.
  static Mapping create(const std::string& name, std::size_t size, bool populate);
  /// Maps an existing `name` whole (at least `min_size` bytes). @throws ipc::Error.
  static Mapping open(const std::string& name, std::size_t min_size, bool populate);
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
  explicit operator bool() const { return base_ != nullptr; }

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace ipc::base
