// The rank's sleeper (core/waiting.hpp): every thread asleep wakes on a ring, not only
// the one that drains the doorbell (a ring that carries no completion, such as a node
// group's flag, would otherwise be lost to a sibling thread).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "base/doorbell.hpp"
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
      sleeper.enter();
      sleeper.begin_sleep();
      // 20 s: only a lost wake-up (or a machine stalled that long) runs it out.
      if (sleeper.sleep(std::chrono::milliseconds(20000)))
        ++woken;
      else
        ++timed_out;
      sleeper.end_sleep();
      sleeper.leave();
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
