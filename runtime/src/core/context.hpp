// Contexts: messages match on (context, source, tag), and a context keeps apart what
// must never match: the program's messages on each communicator, and what the library
// sends for its own purposes on behalf of a communicator.
//
//   bits 31..29  purpose (user, collectives, rpc, farm)
//   bits 28..0   user, collectives: the communicator's own context (collectives of a
//                communicator run on its context with the purpose set);
//                rpc, farm: a sequence number of that purpose, taken collectively
//                (every rank takes the same numbers in the same order)
//
// This is the only place that carves context numbers.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipc::detail {

enum class Purpose : std::uint32_t { user = 0, collectives = 1, rpc = 2, farm = 3 };

inline constexpr std::uint32_t kContextBits = 29;
inline constexpr std::uint32_t kContextMask = (1u << kContextBits) - 1;

/// The context of `purpose` that belongs to the communicator of context `base`.
constexpr std::uint32_t derived_context(std::uint32_t base, Purpose purpose) {
  return (static_cast<std::uint32_t>(purpose) << kContextBits) | (base & kContextMask);
}

/// Fresh contexts of a purpose, in sequence.
class ContextSequence {
 public:
  /// The first of `n` fresh contexts of `purpose` (the next n numbers of its sequence;
  /// it wraps after 2^29, by when the first are long unused).
  std::uint32_t take(Purpose purpose, std::uint32_t n = 1) {
    std::uint32_t first = next_[static_cast<std::uint32_t>(purpose) & 3].fetch_add(n, std::memory_order_relaxed);
    return derived_context(first, purpose);
  }

 private:
  std::atomic<std::uint32_t> next_[4]{};
};

}  // namespace ipc::detail
