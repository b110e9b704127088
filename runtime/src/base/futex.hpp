// Futexes on 32-bit words of memory shared between processes (sync.cpp, channel.cpp).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace ipc::base {

/// Sleeps while *word == seen, at most `at_most` (spurious returns happen).
inline void futex_wait(std::uint32_t* word, std::uint32_t seen, std::chrono::nanoseconds at_most) {
  timespec ts{static_cast<time_t>(at_most.count() / 1000000000), static_cast<long>(at_most.count() % 1000000000)};
  ::syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, nullptr, 0);
}
/// Bumps *word and wakes every sleeper on it.
inline void futex_bump(std::uint32_t* word) {
  std::atomic_ref<std::uint32_t>(*word).fetch_add(1);
  ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace ipc::base
