#include <gtest/gtest.h>

#include <algorithm>
#include <deque>

#include "core/matching.hpp"

using namespace ipc::detail;

namespace {

std::unique_ptr<Unexpected> msg(std::uint32_t comm, int src, int tag, std::size_t id) {
  auto u = std::make_unique<Unexpected>();
  u->env = {comm, src, tag};
  u->size = id;  // used as an identity in these tests
  return u;
}

}  // namespace

TEST(Matching, ExactAndWildcards) {
  EXPECT_TRUE(matches(0, 1, 2, {0, 1, 2}));
  EXPECT_FALSE(matches(0, 1, 2, {0, 1, 3}));
  EXPECT_FALSE(matches(0, 1, 2, {0, 2, 2}));
  EXPECT_FALSE(matches(1, 1, 2, {0, 1, 2}));
  EXPECT_TRUE(matches(0, kAnySource, 2, {0, 7, 2}));
  EXPECT_TRUE(matches(0, 1, kAnyTag, {0, 1, 99}));
  EXPECT_TRUE(matches(0, kAnySource, kAnyTag, {0, 5, 5}));
  EXPECT_FALSE(matches(1, kAnySource, kAnyTag, {0, 5, 5}));  // never across communicators
}

TEST(Matching, UnexpectedInArrivalOrder) {
  MatchQueues<int> q;
  q.add_unexpected(msg(0, 1, 5, 100));
  q.add_unexpected(msg(0, 2, 5, 200));
  q.add_unexpected(msg(0, 1, 6, 300));
  q.add_unexpected(msg(0, 1, 5, 400));
  EXPECT_EQ(q.peek_unexpected(0, 1, 5)->size, 100u);
  EXPECT_EQ(q.take_unexpected(0, 1, 6)->size, 300u);
  EXPECT_EQ(q.take_unexpected(0, 1, 5)->size, 100u);
  EXPECT_EQ(q.take_unexpected(0, kAnySource, 5)->size, 200u);
  EXPECT_EQ(q.take_unexpected(0, kAnySource, kAnyTag)->size, 400u);
  EXPECT_EQ(q.take_unexpected(0, kAnySource, kAnyTag), nullptr);
}

TEST(Matching, PostedInPostOrder) {
  MatchQueues<int> q;
  q.post(0, kAnySource, 5, 1);
  q.post(0, 3, kAnyTag, 2);
  q.post(0, 3, 5, 3);
  // An arrival takes the earliest posted receive that accepts it.
  EXPECT_EQ(q.take_posted({0, 3, 5}), 1);
  EXPECT_EQ(q.take_posted({0, 3, 5}), 2);
  EXPECT_EQ(q.take_posted({0, 3, 5}), 3);
  EXPECT_EQ(q.take_posted({0, 3, 5}), std::nullopt);
}

TEST(Matching, NonOvertakingOverManyMessages) {
  MatchQueues<int> q;
  for (std::size_t i = 0; i < 10000; ++i) q.add_unexpected(msg(0, static_cast<int>(i % 3), 7, i));
  std::size_t last[3] = {0, 0, 0};
  bool first[3] = {true, true, true};
  for (std::size_t i = 0; i < 10000; ++i) {
    int src = static_cast<int>((i * 7) % 3);
    auto u = q.take_unexpected(0, i % 2 ? src : kAnySource, 7);
    ASSERT_NE(u, nullptr);
    int s = u->env.source;
    if (!first[s]) ASSERT_GT(u->size, last[s]);
    first[s] = false;
    last[s] = u->size;
  }
  EXPECT_EQ(q.unexpected_count(), 0u);
}

TEST(Matching, TakePostedFromALostPeer) {
  MatchQueues<int> q;
  q.post(0, 2, 1, 10);
  q.post(0, kAnySource, 1, 11);
  q.post(0, 2, 3, 12);
  q.post(0, 1, 1, 13);
  auto lost = q.take_posted_from(2);
  EXPECT_EQ(lost, (std::vector<int>{10, 12}));
  EXPECT_EQ(q.posted_count(), 2u);  // the wildcard receive stays
}

// The queue under the match queues, against std::deque as the model: pushes, pops
// from the front, erases in the middle and at the front, emptied and refilled, and a
// queue that never empties (its taken front is dropped in halves).
TEST(Matching, FifoKeepsOrderAcrossPopsErasesAndCompaction) {
  Fifo<int> q;
  std::deque<int> model;
  std::uint32_t seed = 12345;
  auto rnd = [&seed](std::uint32_t n) {
    seed = seed * 1664525u + 1013904223u;
    return (seed >> 8) % n;
  };
  int next = 0;
  for (int step = 0; step < 200000; ++step) {
    std::uint32_t what = rnd(100);
    if (what < 52 || model.empty()) {  // slightly more pushes: the queue grows past the compaction point
      q.push_back(next);
      model.push_back(next++);
    } else if (what < 90) {
      ASSERT_EQ(q.front(), model.front());
      q.pop_front();
      model.pop_front();
    } else {
      auto k = static_cast<std::ptrdiff_t>(rnd(static_cast<std::uint32_t>(model.size())));
      auto it = q.erase(q.begin() + k);
      auto mit = model.erase(model.begin() + k);
      ASSERT_EQ(it - q.begin(), mit - model.begin());
    }
    ASSERT_EQ(q.size(), model.size());
    ASSERT_EQ(q.empty(), model.empty());
    if (step % 997 == 0) ASSERT_TRUE(std::equal(q.begin(), q.end(), model.begin(), model.end()));
    if (step == 100000)  // drain completely, then go on
      while (!model.empty()) {
        ASSERT_EQ(q.front(), model.front());
        q.pop_front();
        model.pop_front();
      }
  }
  EXPECT_TRUE(std::equal(q.begin(), q.end(), model.begin(), model.end()));
}
