// The farm's adaptive tasks in flight (farm/pace.hpp): raised when a worker waited,
// bounded by the work it holds (by its own clock) and by a count.
#include <gtest/gtest.h>

#include "farm/pace.hpp"

using ipc::detail::FarmPace;

TEST(FarmPace, StartsAtTwoAndGrowsWhenTheWorkerWaited) {
  FarmPace p;
  EXPECT_EQ(p.limit(), 2);
  p.timed(40, 2);  // 20 ns a task
  EXPECT_EQ(p.limit(), 2);  // not waited: no more
  p.starved();
  EXPECT_EQ(p.limit(), FarmPace::kMaxInFlight);  // at once, not by doubling
}

TEST(FarmPace, TrivialTasksStayAtTheCountLimit) {
  FarmPace p;
  for (int i = 0; i < 30; ++i) {
    p.timed(20 * static_cast<std::uint64_t>(p.limit()), static_cast<std::size_t>(p.limit()));  // 20 ns a task
    p.starved();
  }
  EXPECT_EQ(p.limit(), FarmPace::kMaxInFlight);
}

// However the worker came to wait (rank 0 descheduled on an oversubscribed node),
// long tasks are never held by the thousand: the end of the list stays balanced.
TEST(FarmPace, HeldWorkIsBoundedByTheWorkersClock) {
  FarmPace p;
  for (int i = 0; i < 30; ++i) {
    p.timed(100'000 * static_cast<std::uint64_t>(p.limit()), static_cast<std::size_t>(p.limit()));  // 100 us a task
    p.starved();
  }
  EXPECT_EQ(p.limit(), static_cast<int>(FarmPace::kHeldWork / 100'000));  // 20
  FarmPace slow;
  for (int i = 0; i < 30; ++i) {
    slow.timed(5'000'000, 1);  // 5 ms a task: one waits while one runs
    slow.starved();
  }
  EXPECT_EQ(slow.limit(), 2);
}

TEST(FarmPace, ShrinksWhenTasksGetLonger) {
  FarmPace p;
  for (int i = 0; i < 12; ++i) p.starved();  // not timed yet: the count limit only
  EXPECT_EQ(p.limit(), FarmPace::kMaxInFlight);
  p.timed(1'000'000, 10);  // 100 us a task now
  EXPECT_EQ(p.limit(), 20);
  p.timed(0, 0);  // an empty batch says nothing
  EXPECT_EQ(p.limit(), 20);
}
