/// @file channel.hpp
/// Bounded producer–consumer channels between the ranks of a communicator.
///
///     ipc::Channel<Task> tasks(node_comm, 1024);   // collective
///     tasks.push(t);                               // any rank; blocks while full
///     while (auto t = tasks.pop()) work(*t);       // any rank; nullopt once closed and empty
///     tasks.close();                               // any rank; wakes every waiter
///
/// Made collectively by a communicator's ranks. Items are trivially copyable values.
/// When the ranks share a node, the items are stored in shared memory in a ring of
/// `capacity` cells (rounded up to a power of two, at least 2): a push or a pop is a
/// few atomic operations, no message, and a rank that waits polls briefly, then sleeps
/// on a futex. When they span nodes (or IPC_TOOLS_HOME=always), the communicator's
/// rank 0, the host, holds the items (at most capacity()) on a thread of its own, and
/// every push or pop of another rank is a message to it and its answer; the host's
/// own are direct calls.
///
/// Every item pushed is popped exactly once; items of one producer are popped in the
/// order it pushed them. After close(), push() throws ipc::ChannelClosed, and pop()
/// returns what is left, then std::nullopt. A producer or consumer that dies loses
/// nothing that was pushed and not popped: the item of a push it was in the middle of
/// was never pushed, and that of a pop it was in the middle of was popped (by it). A
/// cell such a rank leaves half claimed is repaired by the ranks waiting behind it
/// (within about 100 ms), so nothing stalls. When the channel's host (its
/// communicator's rank 0) dies, waiters fail with ipc::PeerLost.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "ipc/communicator.hpp"
#include "ipc/errors.hpp"

namespace ipc {

namespace detail {
struct ChannelCore;
std::shared_ptr<ChannelCore> make_channel(const Communicator& comm, std::size_t capacity, std::size_t item_bytes);
/// 0: done; 1: full / empty (try forms); 2: closed (and, for pops, empty); 3: timed out.
int channel_push(ChannelCore& c, const void* item, std::chrono::steady_clock::time_point deadline, bool wait);
int channel_pop(ChannelCore& c, void* item, std::chrono::steady_clock::time_point deadline, bool wait);
void channel_close(ChannelCore& c);
bool channel_closed(const ChannelCore& c);
std::size_t channel_capacity(const ChannelCore& c);
[[noreturn]] void throw_closed();
}  // namespace detail

/// A bounded channel of items of type T (see the top of this file).
template <class T>
class Channel {
  static_assert(std::is_trivially_copyable_v<T>, "ipc::Channel: items must be trivially copyable");

 public:
  /// Collective over `comm`.
  /// @throws ipc::UsageError when capacity is 0.
  Channel(const Communicator& comm, std::size_t capacity) : c_(detail::make_channel(comm, capacity, sizeof(T))) {}

  /// Pushes `item`, waiting while the channel is full.
  /// @throws ipc::ChannelClosed when it is closed, ipc::PeerLost when its host is gone.
  void push(const T& item) {
    if (detail::channel_push(*c_, &item, never(), true) == 2) detail::throw_closed();
  }
  /// Pushes `item` if there is room now.
  /// @throws ipc::ChannelClosed when it is closed.
  bool try_push(const T& item) {
    int r = detail::channel_push(*c_, &item, never(), false);
    if (r == 2) detail::throw_closed();
    return r == 0;
  }
  /// Pushes `item` if room comes within `timeout`.
  /// @throws as push().
  template <class Rep, class Period>
  bool try_push_for(const T& item, std::chrono::duration<Rep, Period> timeout) {
    int r = detail::channel_push(*c_, &item, until(timeout), true);
    if (r == 2) detail::throw_closed();
    return r == 0;
  }
  /// The next item, waiting while the channel is empty; std::nullopt once it is
  /// closed and empty.
  /// @throws ipc::PeerLost when its host is gone.
  std::optional<T> pop() { return take(never(), true); }
  /// The next item if there is one now.
  std::optional<T> try_pop() { return take(never(), false); }
  /// The next item if one comes within `timeout`.
  template <class Rep, class Period>
  std::optional<T> try_pop_for(std::chrono::duration<Rep, Period> timeout) {
    return take(until(timeout), true);
  }
  /// Ends the channel: no more pushes; pops drain what is left. Wakes every waiter.
  void close() { detail::channel_close(*c_); }
  bool closed() const { return detail::channel_closed(*c_); }
  std::size_t capacity() const { return detail::channel_capacity(*c_); }

 private:
  static std::chrono::steady_clock::time_point never() { return std::chrono::steady_clock::time_point::max(); }
  template <class D>
  static std::chrono::steady_clock::time_point until(D d) {
    return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }
  std::optional<T> take(std::chrono::steady_clock::time_point deadline, bool wait) {
    alignas(T) unsigned char buf[sizeof(T)];
    if (detail::channel_pop(*c_, buf, deadline, wait) != 0) return std::nullopt;
    T item;
    std::memcpy(&item, buf, sizeof(T));
    return item;
  }
  std::shared_ptr<detail::ChannelCore> c_;
};

}  // namespace ipc
