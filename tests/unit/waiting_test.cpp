// The rank's sleeper (core/waiting.hpp): every thread asleep wakes on a ring, not only
// the one that drains the doorbell (a ring that carries no completion, such as a node
// group's flag, would otherwise be lost to a sibling thread).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "base/doorbell.hpp"
#include "base/load.hpp"
#include "base/names.hpp"
#include "core/waiting.hpp"

using namespace ipc;

TEST(Sleeper, OneRingWakesEveryThreadAsleep) {
  std::string job = "unit" + std::to_string(::getpid()) + "w" + std::to_string(std::random_device{}());
  base::Doorbell bell(base::doorbell_name(job, 0));
  base::Doorbell other(base::doorbell_name(job, 1));  // another rank, ringing this one
  detail::Sleeper sleeper(bell);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> woken{0}, timed_out{0};
    auto sleep = [&] {
      int slot = sleeper.enter();
      sleeper.begin_sleep();
      // 20 s: only a lost wake-up (or a machine stalled that long) runs it out.
      if (sleeper.sleep(std::chrono::milliseconds(20000)))
        ++woken;
      else
        ++timed_out;
      sleeper.end_sleep();
      sleeper.leave(slot);
    };
    std::thread a(sleep), b(sleep);
    while (sleeper.sleeping() < 2) std::this_thread::yield();
    other.ring(bell.address());
    a.join();
    b.join();
    EXPECT_EQ(woken.load(), 2) << "round " << round;
    EXPECT_EQ(timed_out.load(), 0) << "round " << round << ": a thread slept through the ring";
  }
}

// A sleeper with a key (the one completion flag it waits for) is woken by that flag's
// completion or a plain ring, not by another flag's; one without a key by any.
TEST(Sleeper, AKeyedSleeperWakesOnlyForItsFlag) {
  std::string job = "unit" + std::to_string(::getpid()) + "k" + std::to_string(std::random_device{}());
  base::Doorbell bell(base::doorbell_name(job, 0));
  detail::Sleeper sleeper(bell);
  std::atomic<bool> mine{false}, other{false};
  auto sleep_for = [&](const void* key, std::chrono::milliseconds max) {
    int slot = sleeper.enter(key);
    sleeper.begin_sleep();
    bool woken = sleeper.sleep(max);
    sleeper.end_sleep();
    sleeper.leave(slot);
    return woken;
  };
  auto round = [&](const void* key, const void* rung, std::chrono::milliseconds max) {
    bool woken = false;
    std::thread t([&] { woken = sleep_for(key, max); });
    while (sleeper.sleeping() < 1) std::this_thread::yield();
    sleeper.ring_for(rung);
    t.join();
    return woken;
  };
  // Another flag's completion: it sleeps on to its end (300 ms; it could only wake early
  // by the ring this test says must not come).
  EXPECT_FALSE(round(&mine, &other, std::chrono::milliseconds(300)));
  // Its own flag's: woken (20 s: only a lost wake-up runs it out).
  EXPECT_TRUE(round(&mine, &mine, std::chrono::milliseconds(20000)));
  // No key: any completion wakes it.
  EXPECT_TRUE(round(nullptr, &other, std::chrono::milliseconds(20000)));
}

// The look a waiter takes, in its sleep-instead-of-yield window, at whether a CPU is
// to spare again (base/load.hpp).
TEST(Load, ReadsTheRunnableCountOfALoadavgLine) {
  EXPECT_EQ(base::runnable_in_loadavg("0.52 0.58 0.59 3/412 12345\n"), 3);
  EXPECT_EQ(base::runnable_in_loadavg("12.00 9.10 4.20 17/1024 99"), 17);
  EXPECT_EQ(base::runnable_in_loadavg("0.00 0.00 0.00 1/1 1"), 1);
  EXPECT_EQ(base::runnable_in_loadavg(""), -1);
  EXPECT_EQ(base::runnable_in_loadavg("0.52 0.58 0.59"), -1);
  EXPECT_EQ(base::runnable_in_loadavg("0.52 0.58 0.59 x/412 1"), -1);
  EXPECT_EQ(base::runnable_in_loadavg("0.52 0.58 0.59 3"), -1);
}

TEST(Load, NoCpuToSpareWhileMoreThreadsRunThanThereAreCpus) {
  // One spinning thread more than the CPUs: some thread always waits for one.
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  ASSERT_GT(cpus, 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (long i = 0; i <= cpus; ++i)
    spinners.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  // Until the scheduler has them all runnable (at once, unless the machine is slow).
  bool seen = false;
  for (int i = 0; i < 10000 && !seen; ++i) {
    seen = !base::cpus_to_spare();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  for (auto& t : spinners) t.join();
  EXPECT_TRUE(seen) << "with " << cpus + 1 << " threads spinning on " << cpus << " CPUs, /proc/loadavg never said so";
}
