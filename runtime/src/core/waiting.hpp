// How a blocked call waits: busy-poll, then poll yielding the CPU, then sleep.
//
// A sleep and wake-up costs tens of microseconds, a busy-polled round trip a few, so
// a waiter polls first. Spinning forever would starve the other ranks of an
// oversubscribed node, so after `spin` it yields between polls (from the first poll
// on when ranks outnumber CPUs), and after `yield` more it sleeps in epoll on the
// rank's doorbell (base/doorbell.hpp), which completions, shared-memory peers and
// the node group ring, and on the descriptors of transports that have their own.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "base/doorbell.hpp"

namespace ipc::detail {

struct WaitPolicy {
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
  std::chrono::nanoseconds yield{std::chrono::microseconds(2000)};
  // A node group's wait when oversubscribed: ranks that have not shown up within this
  // are doing other work (or wait for a CPU), and its yields take the CPU from them.
  std::chrono::nanoseconds group_yield{std::chrono::microseconds(100)};
  bool oversubscribed = false;
  bool one_cpu = false;  // the process may run on one CPU only (ipcrun --bind-to core)

  /// From IPC_WAIT_SPIN_US, IPC_WAIT_YIELD_US, IPC_WAIT_GROUP_YIELD_US, IPC_OVERSUBSCRIBED, the number of ranks
  /// on this node and the process's CPU affinity.
  static WaitPolicy from_params(int local_size);
};

/// Whether the process may use asymmetric barriers: a thread about to sleep makes every
/// other thread of the process execute a full barrier (membarrier), so that marking a
/// request done needs none of its own. Decided once (registration can fail: old
/// kernel, seccomp); without it both sides use full barriers.
bool asymmetric_barriers();
/// Makes every running thread of the process execute a full barrier; without
/// asymmetric_barriers(), a full fence here only. False when the system call failed
/// although registered (not seen).
bool process_barrier();

/// An epoll set over the rank's doorbell and the transports' wait fds.
class Sleeper {
 public:
  explicit Sleeper(const base::Doorbell& bell);
  ~Sleeper();
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;

  /// Registers a transport's fd. It joins the epoll set only while some thread
  /// sleeps (first in adds, last out removes): an fd in an epoll set costs a callback
  /// on every arrival, and a nested epoll set a second one, on the fast path.
  void watch(int fd);
  /// Sleeps until a watched fd is readable, ring() is called or `max` passes. The
  /// caller registers as a sleeper first (enter) and re-checks its condition between
  /// enter() and sleep(), so that a ring() in between is never lost. `key`: the one
  /// completion flag its condition depends on (ring_for wakes it only for that one),
  /// or null (any completion does). Returns what leave() takes.
  int enter(const void* key = nullptr);
  /// Returns false when `max` passed with nothing to wake for. One thread at a time
  /// sleeps in epoll; others of the process wait until it wakes, because the one that
  /// wakes drains the doorbell, and a ring meant for another thread (a node group's
  /// flag, which no completion follows) would otherwise be lost to it.
  bool sleep(std::chrono::milliseconds max);
  /// Around sleep(): the first thread in adds the transports' fds, the last out removes them.
  void begin_sleep();
  void end_sleep();
  void leave(int slot) {
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    if (slot >= 0)
      keys_[static_cast<std::size_t>(slot)].store(nullptr, std::memory_order_relaxed);
    else
      any_.fetch_sub(1, std::memory_order_relaxed);
  }
  /// Wakes the sleepers, if any (a syscall only then); `always` rings regardless.
  void ring(bool always = false);
  /// Completion flag `key` was set: wakes the sleepers if one waits for it or for any
  /// completion. (A thread asleep for its own request must not be woken, and then
  /// spin on the rank's CPU, by every completion of another thread's: an RPC server
  /// asleep beside a program that calls.)
  /// True when it rang (a sleeping thread of this process will want the CPU).
  bool ring_for(const void* key) {
    bool wake = wants_ring_for(key);
    if (wake) bell_.ring();
    return wake;
  }
  /// Whether ring_for(key) would ring (then ring() with `always` does it).
  bool wants_ring_for(const void* key) const {
    if (sleepers_.load(std::memory_order_seq_cst) == 0) return false;
    bool wake = any_.load(std::memory_order_relaxed) > 0;
    for (std::size_t i = 0; !wake && i < kSlots; ++i) wake = keys_[i].load(std::memory_order_relaxed) == key;
    return wake;
  }
  /// Threads inside sleep() now (for tests).
  int sleeping() {
    std::lock_guard lk(mu_);
    return asleep_;
  }

 private:
  int epfd_ = -1;
  const base::Doorbell& bell_;
  std::vector<int> fds_;
  std::mutex mu_;
  std::condition_variable woke_;
  bool polling_ = false;           // a thread sleeps in epoll
  std::uint64_t generation_ = 0;   // wake-ups of that thread
  int asleep_ = 0;                 // threads inside sleep()
  int in_sleep_ = 0;
  std::atomic<int> sleepers_{0};
  static constexpr std::size_t kSlots = 8;  // sleepers with a key; more count as `any_`
  std::array<std::atomic<const void*>, kSlots> keys_{};
  std::atomic<int> any_{0};  // sleepers woken by any completion
};

}  // namespace ipc::detail
