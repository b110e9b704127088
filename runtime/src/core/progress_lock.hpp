// The progress lock: a test-and-set lock, held for microseconds at most (polls never
// block). Unlocking is a plain store, so a lock/unlock pair costs one atomic
// read-modify-write instead of a mutex's two: the shared-memory fast path takes it
// several times per message. A thread that finds it taken spins briefly, then yields
// (the holder may be descheduled on an oversubscribed node).
#pragma once

#include <sched.h>

#include <atomic>

namespace ipc::detail {

/// A spin-wait hint to the CPU (lets a sibling hardware thread run).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class ProgressLock {
 public:
  void lock() {
    while (held_.exchange(true, std::memory_order_acquire)) {
      for (int i = 0; held_.load(std::memory_order_relaxed); i = i < 64 ? i + 1 : i) {
        if (i < 64) {
          cpu_relax();
        } else {
          ::sched_yield();
        }
      }
    }
  }
  bool try_lock() { return !held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire); }
  void unlock() { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

}  // namespace ipc::detail
