/// @file detail/transfer.hpp
/// The type-erased description of a send's bytes and a receive's destination, the
/// boundary between the typed API and the compiled engine.
//
// The engine's vocabulary of a message's bytes. Published to programs as
// <ipc/detail/transfer.hpp>, a copy the build makes (runtime/CMakeLists.txt,
// ipc_public_header), hence an include guard rather than #pragma once: a
// translation unit of the runtime may reach both.
#ifndef IPC_CORE_TRANSFER_HPP
#define IPC_CORE_TRANSFER_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace ipc::detail {

/// The bytes of one outgoing message. `data` stays valid until the send completes:
/// it points into the caller's object (zero copy) or into `keep`, which the request
/// owns.
struct SendSource {
  const void* data = nullptr;
  std::size_t size = 0;
  std::shared_ptr<const void> keep;
};

/// Throws ipc::Truncation: `bytes` arrived where `what` `expected` fit.
[[noreturn]] void throw_size_mismatch(std::size_t bytes, std::size_t expected, const char* what);

/// Where an incoming message goes.
struct RecvTarget {
  // Constructors, not an aggregate: value-initializing an aggregate this size zeroes it
  // with `rep stos`, whose start-up cost (tens of cycles) was a tenth of a non-blocking
  // receive's time in a stream of small messages; these store each member.
  RecvTarget() noexcept {}  // NOLINT: user-provided on purpose (see above)
  RecvTarget(std::function<void*(std::size_t)> p, std::function<void()> f = {}, void* into = nullptr,
             std::size_t into_bytes = 0, bool exactly = false)
      : prepare(std::move(p)), finish(std::move(f)), fixed(into), fixed_bytes(into_bytes), exact(exactly) {}

  /// Called once the message's size is known, on whichever thread makes progress;
  /// returns where the `bytes` of payload go. Throws (Truncation) when they do not fit:
  /// the message is then consumed and the receive fails with that exception.
  std::function<void*(std::size_t bytes)> prepare;
  /// Called after the payload has landed, on the thread that waits for or tests the
  /// request (deserialization goes here). May be empty.
  std::function<void()> finish;
  /// Instead of `prepare` (raw values and spans, the common case): the payload goes to
  /// `fixed`, which holds `fixed_bytes`; a message of other size (`exact`) or of more
  /// (otherwise) fails with Truncation. Costs no callable on the way of a message.
  void* fixed = nullptr;
  std::size_t fixed_bytes = 0;
  bool exact = false;
  /// Instead of both (a message of any size as bytes): resized to the payload, which
  /// goes to its data. Costs no callable either.
  std::vector<std::byte>* bytes_into = nullptr;

  /// A raw buffer (`fixed`) that `bytes` fit: its payload goes there, no call made.
  bool fits_fixed(std::size_t bytes) const {
    return !prepare && !bytes_into && (exact ? bytes == fixed_bytes : bytes <= fixed_bytes);
  }
  /// Where a payload of `bytes` goes. @throws Truncation when it does not fit.
  void* destination(std::size_t bytes) const {
    if (prepare) return prepare(bytes);
    if (bytes_into) {
      bytes_into->resize(bytes);
      return bytes_into->data();
    }
    if (fits_fixed(bytes)) return fixed;
    throw_size_mismatch(bytes, fixed_bytes, exact ? "exactly" : "at most");
  }
};

}  // namespace ipc::detail

#endif  // IPC_CORE_TRANSFER_HPP
