// Contexts: messages match on (context, source, tag), and a context keeps apart what
// must never match: the program's messages on each communicator, the collectives of
// each communicator, and what the library sends for its own purposes.
//
//   bit 31       set: the collectives of the communicator whose context is in bits 30..0
//   bits 30..28  purpose of a communicator's context: the program's (0), rpc, farm
//   bits 27..0   the program's: the communicator's number (the world is 0);
//                rpc, farm: a sequence number of that purpose, taken collectively
//                (every rank takes the same numbers in the same order)
//
// So every communicator, the library's private ones included, has collectives of its
// own, distinct from every other context. This is the only place that carves context
// numbers.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipc::detail {

enum class Purpose : std::uint32_t { user = 0, rpc = 1, farm = 2 };

inline constexpr std::uint32_t kCollectiveBit = 1u << 31;
inline constexpr std::uint32_t kPurposeShift = 28;
inline constexpr std::uint32_t kNumberMask = (1u << kPurposeShift) - 1;

/// The context of the collectives of the communicator of context `base`.
constexpr std::uint32_t collective_context(std::uint32_t base) { return base | kCollectiveBit; }

/// Fresh contexts of a purpose, in sequence.
class ContextSequence {
 public:
  /// The first of `n` fresh contexts of `purpose` (the next n numbers of its sequence;
  /// it wraps after 2^28, by when the first are long unused).
  std::uint32_t take(Purpose purpose, std::uint32_t n = 1) {
    auto p = static_cast<std::uint32_t>(purpose);
    std::uint32_t first = next_[p & 3].fetch_add(n, std::memory_order_relaxed);
    return (p << kPurposeShift) | (first & kNumberMask);
  }

 private:
  std::atomic<std::uint32_t> next_[4]{};
};

static_assert(collective_context(0) != ((static_cast<std::uint32_t>(Purpose::rpc) << kPurposeShift) | 0));

}  // namespace ipc::detail
