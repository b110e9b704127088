#include "core/progress_lock.hpp"

#include <cstdio>
#include <cstdlib>

#include "core/waiting.hpp"

namespace ipc::detail {
namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool kSanitizingThreads = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kSanitizingThreads = true;
#else
constexpr bool kSanitizingThreads = false;
#endif
#else
constexpr bool kSanitizingThreads = false;
#endif

// Claims closer together than this count as rapid; this many in a row end the bias.
constexpr auto kRapid = std::chrono::milliseconds(1);
constexpr int kRapidClaims = 16;

}  // namespace

ProgressLock::ProgressLock() {
  if (!kSanitizingThreads && asymmetric_barriers()) owner_.store(self(), std::memory_order_relaxed);
}

// Spins a while, then yields, until `busy` turns false; on one CPU it yields at once
// (the thread it waits for is off the CPU).
template <class Busy>
void ProgressLock::wait_while(Busy&& busy) const {
  const int spins = one_cpu_ ? 0 : 64;
  for (int i = 0; busy(); i = i < spins ? i + 1 : i) {
    if (i < spins)
      cpu_relax();
    else
      ::sched_yield();
  }
}

void ProgressLock::spin_tas() {
  while (held_.exchange(true, std::memory_order_acquire))
    wait_while([&] { return held_.load(std::memory_order_relaxed); });
}

void ProgressLock::lock_shared() {
  spin_tas();
  const void* owner = owner_.load(std::memory_order_relaxed);
  if (owner && owner != self()) claim();
}

// A guest that finds the owner inside backs off (a try never waits for a holder).
bool ProgressLock::try_lock_shared() {
  if (held_.load(std::memory_order_relaxed) || held_.exchange(true, std::memory_order_acquire)) return false;
  const void* owner = owner_.load(std::memory_order_relaxed);
  if (owner && owner != self()) {
    announce();
    if (inside_.load(std::memory_order_acquire)) {
      claimed_.store(false, std::memory_order_release);
      held_.store(false, std::memory_order_release);
      return false;
    }
    count_claim();
  }
  return true;
}

void ProgressLock::unlock_shared() {
  const void* owner = owner_.load(std::memory_order_relaxed);
  if (owner && owner != self()) claimed_.store(false, std::memory_order_release);  // a guest's claim ends
  held_.store(false, std::memory_order_release);
}

// After the barrier, either the owner's `inside` is visible here, or its next look at
// `claimed` sees the claim: it then waits on the test-and-set lock this guest holds.
void ProgressLock::claim() {
  announce();
  wait_while([&] { return inside_.load(std::memory_order_acquire); });
  count_claim();
}

void ProgressLock::announce() {
  claimed_.store(true, std::memory_order_relaxed);
  // Registered when the bias began: a failure now would leave the owner unfenced.
  if (!process_barrier()) {
    std::fprintf(stderr, "ipc: membarrier failed after it was registered: the progress lock cannot exclude\n");
    std::abort();
  }
}

void ProgressLock::count_claim() {
  auto now = std::chrono::steady_clock::now();
  rapid_ = now - last_claim_ < kRapid ? rapid_ + 1 : 0;
  last_claim_ = now;
  // For good: `claimed` stays set, so that an owner that read the old owner sees it.
  if (rapid_ >= kRapidClaims) owner_.store(nullptr, std::memory_order_relaxed);
}

}  // namespace ipc::detail
