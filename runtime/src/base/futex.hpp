// Futexes on 32-bit words of memory shared between processes (sync.cpp, channel.cpp).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <thread>

namespace ipc::base {

// A waiter counts itself in *sleepers (a word of the same memory) while it may sleep,
// and a waker bumps *word and makes the system call only when someone is counted. The
// waker's fence orders its change of the condition before its look at the count, and
// the waiter's count is a sequentially consistent read-modify-write before it looks
// at the condition: so either the waker sees the count (and bumps and wakes), or the
// waiter sees the changed condition and does not sleep. With nobody counted a wake is
// a fence and a load: no write to the shared word.

/// Wakes every sleeper on *word (bumping it) when *sleepers says there are any.
inline void futex_wake(std::uint32_t* word, std::uint64_t* sleepers) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (std::atomic_ref<std::uint64_t>(*sleepers).load() > 0) {
    std::atomic_ref<std::uint32_t>(*word).fetch_add(1);
    ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  }
}

/// Waits until ready() or `deadline`: polls, yields, then sleeps on *word in naps of
/// at most 100 ms, calling after_nap() after each one that did not end the wait (to
/// look for dead peers; it may throw). True when ready() held.
template <class Ready, class AfterNap>
bool futex_await(std::uint32_t* word, std::uint64_t* sleepers, Ready&& ready,
                 std::chrono::steady_clock::time_point deadline, AfterNap&& after_nap) {
  for (int i = 0; i < 200; ++i) {
    if (ready()) return true;
    if (i >= 50) std::this_thread::yield();
  }
  std::atomic_ref<std::uint64_t> count(*sleepers);
  for (;;) {
    std::uint32_t seen = std::atomic_ref<std::uint32_t>(*word).load();
    count.fetch_add(1);
    bool now = ready();
    auto t = std::chrono::steady_clock::now();
    if (!now && t < deadline) {
      auto nap = std::min<std::chrono::nanoseconds>(deadline - t, std::chrono::milliseconds(100));
      timespec ts{static_cast<time_t>(nap.count() / 1000000000), static_cast<long>(nap.count() % 1000000000)};
      ::syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, nullptr, 0);
    }
    count.fetch_sub(1);
    if (now || ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    after_nap();
  }
}

}  // namespace ipc::base
