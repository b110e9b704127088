// Context numbers (core/context.hpp): the program's, the collectives' of every
// communicator, and the library's private ones never coincide.
#include <gtest/gtest.h>

#include <set>

#include "core/context.hpp"

using namespace ipc::detail;

TEST(Contexts, EveryCommunicatorAndItsCollectivesAreApart) {
  ContextSequence seq;
  std::set<std::uint32_t> seen{0, collective_context(0)};  // the world and its collectives
  for (int i = 0; i < 100; ++i) {
    for (auto p : {Purpose::rpc, Purpose::farm}) {
      std::uint32_t c = seq.take(p);
      EXPECT_TRUE(seen.insert(c).second) << "context " << c << " taken twice";
      EXPECT_TRUE(seen.insert(collective_context(c)).second) << "collectives of " << c << " collide";
    }
  }
  std::uint32_t first = seq.take(Purpose::rpc, 2);
  EXPECT_TRUE(seen.insert(first).second);
  EXPECT_TRUE(seen.insert(first + 1).second);  // the second of a pair taken at once
  EXPECT_EQ(seq.take(Purpose::rpc), first + 2);
}
