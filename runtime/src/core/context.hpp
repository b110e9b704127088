// Contexts: messages match on (context, source, tag), and a context keeps apart what
// must never match: the program's messages on each communicator, the collectives of
// each communicator, and what the library sends for its own purposes.
//
//   bit 31       set: the collectives of the communicator whose context is in bits 29..0
//   bit 30       set (with bit 31): its non-blocking collectives, which run on a thread
//                of their own (core/async.hpp) and so must never match the blocking ones
//   bits 29..28  purpose of a communicator's context: the program's (0), rpc, farm,
//                tools (the home queues of semaphores and channels, api/home.hpp)
//   bit 27       set: a communicator of some of the job's ranks (split, dup of one,
//                subset): its ranks are translated (Engine::add_group); clear: the
//                job's ranks as they are, so the world's messages look nothing up
//   bits 26, 25  with bits 31 and 27: the ranks of one node (26) or the node leaders
//                (25) of the communicator whose collectives span nodes, for its
//                node-aware collectives (collectives/hierarchy.hpp); derived from its
//                collective context without agreement, as every rank computes the
//                same groups from the job's node map
//   bits 24..0   the program's: the communicator's number (the world is 0);
//                rpc, farm, tools: a sequence number of that purpose
//
// Numbers are agreed on by the ranks that make a communicator (the largest of their
// next numbers, Engine::agree_context), so that ranks which took part in different
// communicators' making still agree afterwards.
//
// So every communicator, the library's private ones included, has collectives of its
// own, distinct from every other context. This is the only place that carves context
// numbers.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipc::detail {

enum class Purpose : std::uint32_t { user = 0, rpc = 1, farm = 2, tools = 3 };

inline constexpr std::uint32_t kCollectiveBit = 1u << 31;
inline constexpr std::uint32_t kNonblockingBit = 1u << 30;
inline constexpr std::uint32_t kPurposeShift = 28;
inline constexpr std::uint32_t kPurposeMask = 3u << kPurposeShift;
inline constexpr std::uint32_t kGroupBit = 1u << 27;
inline constexpr std::uint32_t kNodeBit = 1u << 26;
inline constexpr std::uint32_t kLeadersBit = 1u << 25;
inline constexpr std::uint32_t kNumberMask = kLeadersBit - 1;

/// Whether messages of context `ctx` (or its collectives) name ranks of a group.
constexpr bool grouped(std::uint32_t ctx) { return (ctx & kGroupBit) != 0; }
/// The communicator's context of a collective context.
constexpr std::uint32_t base_context(std::uint32_t ctx) { return ctx & ~(kCollectiveBit | kNonblockingBit); }
/// The purpose of a context (of a communicator or of its collectives).
constexpr Purpose purpose_of(std::uint32_t ctx) { return static_cast<Purpose>((ctx & kPurposeMask) >> kPurposeShift); }

/// The context of the collectives of the communicator of context `base`.
constexpr std::uint32_t collective_context(std::uint32_t base) { return base | kCollectiveBit; }
/// The node-aware parts of collective context `coll`: the ranks of one node, the
/// node leaders (grouped contexts: Engine::add_group registers their ranks).
constexpr std::uint32_t node_context(std::uint32_t coll) { return coll | kGroupBit | kNodeBit; }
constexpr std::uint32_t leaders_context(std::uint32_t coll) { return coll | kGroupBit | kLeadersBit; }
/// Whether `ctx` is such a part (never node-aware again itself).
constexpr bool hierarchy_part(std::uint32_t ctx) { return (ctx & (kNodeBit | kLeadersBit)) != 0; }
/// The context of the non-blocking collectives of the communicator of context `base`.
constexpr std::uint32_t nonblocking_context(std::uint32_t base) { return base | kCollectiveBit | kNonblockingBit; }

/// Fresh contexts of a purpose, in sequence.
class ContextSequence {
 public:
  /// The first of `n` fresh contexts of `purpose` (the next n numbers of its sequence;
  /// it wraps after 2^25, by when the first are long unused).
  std::uint32_t take(Purpose purpose, std::uint32_t n = 1) {
    auto p = static_cast<std::uint32_t>(purpose);
    std::uint32_t first = next_[p & 3].fetch_add(n, std::memory_order_relaxed);
    return (p << kPurposeShift) | (first & kNumberMask);
  }
  /// The next number of `purpose` (not taken).
  std::uint32_t next(Purpose purpose) const { return next_[static_cast<std::uint32_t>(purpose) & 3].load(); }
  /// Takes number `n` of `purpose` (agreed on with other ranks): later ones follow it.
  std::uint32_t take_at(Purpose purpose, std::uint32_t n) {
    auto p = static_cast<std::uint32_t>(purpose);
    std::uint32_t cur = next_[p & 3].load();
    while (cur < n + 1 && !next_[p & 3].compare_exchange_weak(cur, n + 1)) {
    }
    return (p << kPurposeShift) | (n & kNumberMask);
  }

 private:
  std::atomic<std::uint32_t> next_[4]{1, 0, 0, 0};  // the program's number 0 is the world
};

static_assert(collective_context(0) != ((static_cast<std::uint32_t>(Purpose::rpc) << kPurposeShift) | 0));
static_assert(nonblocking_context(kNumberMask | kGroupBit | kPurposeMask) != collective_context(kNumberMask | kGroupBit | kPurposeMask));
static_assert(base_context(nonblocking_context(7)) == 7 && purpose_of(nonblocking_context(2u << kPurposeShift)) == Purpose::farm);

}  // namespace ipc::detail
