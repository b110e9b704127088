/// @file status.hpp
/// Tags, wildcards and the status of a completed receive.
//
// The engine's matching vocabulary. Published to programs as
// <ipc/status.hpp>, a copy the build makes (runtime/CMakeLists.txt,
// ipc_public_header), hence an include guard rather than #pragma once: a
// translation unit of the runtime may reach both.
#ifndef IPC_CORE_STATUS_HPP
#define IPC_CORE_STATUS_HPP

#include <compare>
#include <cstddef>

namespace ipc {

/// A message tag. A strong type so that tags and ranks cannot be swapped by mistake:
/// `comm.send(x, 1, ipc::Tag{7})`. User tags are 0 and up.
struct Tag {
  int value = 0;
  constexpr Tag() = default;
  constexpr explicit Tag(int v) : value(v) {}
  friend constexpr auto operator<=>(Tag, Tag) = default;
};

/// Receive from any rank.
inline constexpr int any_source = -1;
/// Receive with any tag.
inline constexpr Tag any_tag{-1};

/// What a completed receive (or a probe) found.
struct Status {
  int source = -1;        ///< the sending rank
  Tag tag{};              ///< the message's tag
  std::size_t bytes = 0;  ///< the message's size in bytes (serialized size for Cereal types)

  /// Number of elements of type T in the message (raw-byte values only).
  template <class T>
  std::size_t count() const {
    return bytes / sizeof(T);
  }
};

}  // namespace ipc

#endif  // IPC_CORE_STATUS_HPP
