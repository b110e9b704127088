// The progress lock: held for microseconds at most (polls never block), taken several
// times per message on the shared-memory fast path.
//
// Most programs call the library from one thread. That thread (the one that built the
// engine: the lock's owner) takes the lock without an atomic read-modify-write: it
// says it is inside with a plain store and checks that no other thread has claimed
// the lock, with a compiler barrier only between the two. Another thread (a guest:
// the progress thread, every few milliseconds) takes a test-and-set lock, claims the
// lock, and makes every running thread of the process execute a full barrier
// (membarrier), after which it sees the owner inside, and waits for it to leave, or
// the owner sees the claim and queues on the test-and-set lock too. A claim costs the
// guest a system call; when guests come often (an RPC server, a program's second
// thread), the bias ends for good and every thread takes the test-and-set lock, whose
// unlock is a plain store: one atomic exchange per lock.
//
// Without membarrier (old kernel, seccomp) or under ThreadSanitizer (which cannot see
// the barrier), there is no bias.
#pragma once

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ipc::detail {

/// A spin-wait hint to the CPU (lets a sibling hardware thread run).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class ProgressLock {
 public:
  /// The constructing thread becomes the owner (when a bias is possible).
  ProgressLock();
  /// Every thread taking the lock runs on the same one CPU (ipcrun --bind-to core): a
  /// holder that another thread finds is then off the CPU, and spinning for it only
  /// delays it; the waiter yields at once.
  void set_one_cpu(bool one) { one_cpu_ = one; }

  void lock() {
    if (owner_.load(std::memory_order_relaxed) == self() && enter_biased()) return;
    lock_shared();
  }
  bool try_lock() {
    if (owner_.load(std::memory_order_relaxed) == self() && enter_biased()) return true;
    return try_lock_shared();
  }
  void unlock() {
    if (owner_.load(std::memory_order_relaxed) == self() && inside_.load(std::memory_order_relaxed)) {
      inside_.store(false, std::memory_order_release);
      return;
    }
    unlock_shared();
  }

 private:
  static const void* self() {
    static thread_local char tag;
    return &tag;
  }
  // The owner: inside, then no claim (the guest's membarrier orders the two).
  bool enter_biased() {
    inside_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (!claimed_.load(std::memory_order_acquire)) [[likely]]
      return true;
    inside_.store(false, std::memory_order_release);
    return false;
  }
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();
  template <class Busy>
  void wait_while(Busy&& busy) const;
  void spin_tas();
  void claim();  // with the test-and-set lock held: waits until the owner is out
  void announce();     // sets the claim and makes the owner's threads fence
  void count_claim();  // rapid claims end the bias

  alignas(64) std::atomic<bool> inside_{false};  // written by the owner only
  std::atomic<const void*> owner_{nullptr};      // null: no bias (any more)
  alignas(64) std::atomic<bool> held_{false};    // the test-and-set lock
  std::atomic<bool> claimed_{false};             // a guest holds (or wants) the lock
  // Guests' claims in quick succession (each within a millisecond of the last): past a
  // few, the bias ends.
  std::chrono::steady_clock::time_point last_claim_{};
  int rapid_ = 0;
  bool one_cpu_ = false;
};

}  // namespace ipc::detail
