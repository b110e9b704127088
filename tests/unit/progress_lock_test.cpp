// The progress lock (core/progress_lock.hpp): its owner takes it without an atomic
// read-modify-write while guests claim it with a membarrier; mutual exclusion must
// hold across the owner's fast path, guests' claims, and the end of the bias.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "core/progress_lock.hpp"

using ipc::detail::ProgressLock;

namespace {

// Increments a plain counter under the lock from the owner and from `guests` threads;
// a lost update shows a broken exclusion. `guest_pause` spaces the guests' locks
// (rare guests keep the bias, frequent ones end it).
void hammer(int guests, std::chrono::microseconds guest_pause, int owner_rounds, int guest_rounds) {
  ProgressLock lock;  // this thread: the owner
  long counter = 0;   // deliberately not atomic
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int g = 0; g < guests; ++g)
    ts.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < guest_rounds; ++i) {
        if (i % 2 == 0) {
          std::lock_guard lk(lock);
          ++counter;
        } else {
          while (!lock.try_lock()) std::this_thread::yield();
          ++counter;
          lock.unlock();
        }
        if (guest_pause.count()) std::this_thread::sleep_for(guest_pause);
      }
    });
  go = true;
  for (int i = 0; i < owner_rounds; ++i) {
    if (i % 3 == 0) {
      if (lock.try_lock()) {
        ++counter;
        lock.unlock();
      } else {
        std::lock_guard lk(lock);
        ++counter;
      }
    } else {
      std::lock_guard lk(lock);
      ++counter;
    }
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, static_cast<long>(owner_rounds) + static_cast<long>(guests) * guest_rounds);
}

}  // namespace

TEST(ProgressLock, OwnerAlone) { hammer(0, std::chrono::microseconds(0), 1000000, 0); }

TEST(ProgressLock, RareGuestsKeepTheBias) { hammer(1, std::chrono::microseconds(2000), 3000000, 200); }

TEST(ProgressLock, FrequentGuestsEndIt) { hammer(3, std::chrono::microseconds(0), 2000000, 200000); }

TEST(ProgressLock, AGuestOnlyLock) {
  // Built on one thread, used only by others (the owner never comes back).
  std::unique_ptr<ProgressLock> lock;
  std::thread([&] { lock = std::make_unique<ProgressLock>(); }).join();
  long counter = 0;
  std::vector<std::thread> ts;
  for (int g = 0; g < 2; ++g)
    ts.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        std::lock_guard lk(*lock);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 200000);
}

TEST(ProgressLock, AGuestsTryDoesNotWaitForTheOwner) {
  ProgressLock lock;  // this thread: the owner
  lock.lock();
  std::atomic<int> result{-1};
  std::thread guest([&] { result = lock.try_lock() ? 1 : 0; });
  // The owner keeps the lock until the guest's try has answered (10 s: only a try that
  // waits for the owner runs it out).
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (result.load() < 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  int answered = result.load();
  lock.unlock();
  guest.join();
  EXPECT_EQ(answered, 0) << "the guest's try_lock waited for the owner, or took the lock it holds";
  // The lock is still usable by both afterwards.
  std::thread([&] {
    std::lock_guard lk(lock);
  }).join();
  std::lock_guard lk(lock);
}
