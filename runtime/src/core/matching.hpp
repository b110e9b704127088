// Message matching as in MPI: a receive names (communicator, source, tag), where
// source and tag may be wildcards. An arriving message goes to the earliest posted
// receive it matches; a posted receive takes the earliest matching message that
// arrived unexpected. Arrival order per sender is the transports' order, so messages
// between a pair on one communicator and tag never overtake each other.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/pool.hpp"

namespace ipc::detail {

inline constexpr int kAnySource = -1;
inline constexpr int kAnyTag = -1;

struct Envelope {
  std::uint32_t comm = 0;
  int source = 0;
  int tag = 0;
};

/// Whether a receive for (comm, source, tag) accepts a message with envelope `e`.
inline bool matches(std::uint32_t comm, int source, int tag, const Envelope& e) {
  return comm == e.comm && (source == kAnySource || source == e.source) && (tag == kAnyTag || tag == e.tag);
}

/// A message that arrived before its receive was posted. Small payloads live inside
/// it, larger ones in a SizeClassPool buffer, and the objects come from a per-thread
/// free list: a stream of messages that outrun their receives costs no malloc.
struct Unexpected {
  static constexpr std::size_t kInline = 64;

  Envelope env;
  std::size_t size = 0;         // message size in bytes
  bool rendezvous = false;      // only announced (rts): the payload waits at the sender
  std::uint64_t cookie = 0;     // rendezvous: the sender's request id
  std::uint64_t remote = 0;     // rendezvous: the sender's buffer address (single-copy reads)
  std::byte* big = nullptr;     // eager payloads above kInline (SizeClassPool, `size` bytes)
  std::byte small[kInline];     // eager payloads up to kInline

  Unexpected() = default;
  Unexpected(const Unexpected&) = delete;
  Unexpected& operator=(const Unexpected&) = delete;
  ~Unexpected() {
    if (big) SizeClassPool::put(big, size);
  }

  /// An eager message of `bytes` from `e`, with room for its payload.
  static std::unique_ptr<Unexpected> eager(const Envelope& e, std::size_t bytes) {
    std::unique_ptr<Unexpected> u(new Unexpected);
    u->env = e;
    u->size = bytes;
    if (bytes > kInline) u->big = static_cast<std::byte*>(SizeClassPool::get(bytes));
    return u;
  }
  std::byte* payload() { return size <= kInline ? small : big; }
  const std::byte* payload() const { return size <= kInline ? small : big; }

  static void* operator new(std::size_t n) {
    return n == sizeof(Unexpected) ? FreeList<sizeof(Unexpected), alignof(Unexpected)>::get() : ::operator new(n);
  }
  static void operator delete(void* p, std::size_t n) {
    if (n == sizeof(Unexpected))
      FreeList<sizeof(Unexpected), alignof(Unexpected)>::put(p);
    else
      ::operator delete(p);
  }
};

/// A first-in first-out queue in one vector: taking from the front moves an index, and
/// the vector keeps its room once emptied, so a steady stream of messages allocates
/// nothing (a deque allocated and freed a block every 21 entries). Erasing from the
/// middle (a receive that matched a later message, a cancel) shifts the rest.
template <class T>
class Fifo {
 public:
  using iterator = typename std::vector<T>::iterator;
  using const_iterator = typename std::vector<T>::const_iterator;
  bool empty() const { return head_ == v_.size(); }
  std::size_t size() const { return v_.size() - head_; }
  T& front() { return v_[head_]; }
  iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() { return v_.end(); }
  const_iterator begin() const { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  const_iterator end() const { return v_.end(); }
  void push_back(T x) { v_.push_back(std::move(x)); }
  void pop_front() {
    v_[head_] = T();  // what it holds goes now (an unexpected message's payload)
    ++head_;
    if (head_ == v_.size()) {
      v_.clear();  // keeps its room
      head_ = 0;
    } else if (head_ >= 256 && head_ * 2 >= v_.size()) {  // a queue never empty: drop the taken half
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  /// Returns the iterator after `it`. Near the front (a receive that waits behind one
  /// of another communicator's, such as an RPC server's that stays posted), the
  /// entries before it move up one instead of all after it moving down.
  iterator erase(iterator it) {
    if (it == begin()) {
      pop_front();
      return begin();
    }
    if (std::ptrdiff_t k = it - begin(); k < end() - it) {
      std::move_backward(begin(), it, it + 1);
      pop_front();  // (may compact the vector: positions, not iterators, carry over)
      return begin() + k;
    }
    return v_.erase(it);
  }

 private:
  std::vector<T> v_;
  std::size_t head_ = 0;  // the front
};

/// The two queues, generic over what a posted receive is (the engine's request).
template <class Posted>
class MatchQueues {
 public:
  struct Entry {
    std::uint32_t comm;
    int source;
    int tag;
    Posted posted;
  };

  /// Removes and returns the earliest unexpected message a receive would match.
  std::unique_ptr<Unexpected> take_unexpected(std::uint32_t comm, int source, int tag) {
    for (auto it = unexpected_.begin(); it != unexpected_.end(); ++it) {
      if (matches(comm, source, tag, (*it)->env)) {
        auto u = std::move(*it);
        unexpected_.erase(it);
        return u;
      }
    }
    return nullptr;
  }
  /// The earliest unexpected message a receive would match, left in place (probe).
  const Unexpected* peek_unexpected(std::uint32_t comm, int source, int tag) const {
    for (auto& u : unexpected_)
      if (matches(comm, source, tag, u->env)) return u.get();
    return nullptr;
  }
  void add_unexpected(std::unique_ptr<Unexpected> u) { unexpected_.push_back(std::move(u)); }
  /// Drops unexpected messages for which `pred` holds (announcements of a lost peer).
  template <class Pred>
  void drop_unexpected_if(Pred pred) {
    for (auto it = unexpected_.begin(); it != unexpected_.end();)
      it = pred(**it) ? unexpected_.erase(it) : it + 1;
  }

  /// Whether a receive naming `source` exactly is posted (wildcards not counted).
  [[gnu::noinline]] bool posted_from(int source) const {
    for (auto it = posted_.begin(); it != posted_.end(); ++it)
      if (it->source == source) return true;
    return false;
  }
  void post(std::uint32_t comm, int source, int tag, Posted p) {
    posted_.push_back(Entry{comm, source, tag, std::move(p)});
  }
  /// Removes and returns the earliest posted receive that accepts `e`.
  std::optional<Posted> take_posted(const Envelope& e) {
    if (posted_.empty()) return std::nullopt;
    if (Entry& f = posted_.front(); matches(f.comm, f.source, f.tag, e)) {  // the common case, 8 instructions fewer
      Posted p = std::move(f.posted);
      posted_.pop_front();
      return p;
    }
    for (auto it = posted_.begin() + 1; it != posted_.end(); ++it) {
      if (matches(it->comm, it->source, it->tag, e)) {
        Posted p = std::move(it->posted);
        posted_.erase(it);
        return p;
      }
    }
    return std::nullopt;
  }
  /// Removes and returns every posted receive naming `source` exactly (peer lost).
  std::vector<Posted> take_posted_from(int source) {
    return take_posted_where([source](const Entry& e) { return e.source == source; });
  }
  /// Takes every posted receive of context `comm` (abandoned collectives).
  std::vector<Posted> take_posted_on(std::uint32_t comm) {
    return take_posted_where([comm](const Entry& e) { return e.comm == comm; });
  }
  /// Takes every posted receive (the engine shuts down).
  std::vector<Posted> take_all_posted() {
    return take_posted_where([](const Entry&) { return true; });
  }
  /// Removes a posted receive (cancel); true when it was still there.
  template <class Pred>
  bool remove_posted_if(Pred pred) {
    for (auto it = posted_.begin(); it != posted_.end(); ++it)
      if (pred(it->posted)) {
        posted_.erase(it);
        return true;
      }
    return false;
  }

  std::size_t posted_count() const { return posted_.size(); }
  /// f(comm, source, tag) for each posted receive, oldest first (a report).
  template <class F>
  void for_each_posted(F&& f) const {
    for (auto& e : posted_) f(e.comm, e.source, e.tag);
  }
  /// f(message) for each unexpected message, oldest first (a report).
  template <class F>
  void for_each_unexpected(F&& f) const {
    for (auto& u : unexpected_) f(*u);
  }
  std::size_t unexpected_count() const { return unexpected_.size(); }

 private:
  template <class Pred>
  std::vector<Posted> take_posted_where(Pred pred) {
    std::vector<Posted> out;
    for (auto it = posted_.begin(); it != posted_.end();) {
      if (pred(*it)) {
        out.push_back(std::move(it->posted));
        it = posted_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }
  Fifo<Entry> posted_;
  Fifo<std::unique_ptr<Unexpected>> unexpected_;
};

}  // namespace ipc::detail
