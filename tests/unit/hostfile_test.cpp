// Hostfiles, --host lists and placement (launcher/hostfile.hpp, placement.hpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "base/errors.hpp"
#include "error_of.hpp"
#include "hostfile.hpp"
#include "placement.hpp"

using namespace ipc;
using namespace ipc::launcher;


TEST(Hostfile, OpenMpiSyntaxWithCommentsBlankLinesAndDuplicates) {
  auto hosts = parse_hostfile(
      "# the lab\n"
      "\n"
      "node1 slots=2 max_slots=4   # the fast one\n"
      "  node2\tslots=2\n"
      "node3\n"
      "node1 slots=1\n"
      "10.0.0.7 slots=8\r\n",
      "lab.hosts");
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[0].name, "node1");
  EXPECT_EQ(hosts[0].slots, 3);      // merged: 2 + 1
  EXPECT_EQ(hosts[0].max_slots, 4);
  EXPECT_EQ(hosts[1].name, "node2");
  EXPECT_EQ(hosts[1].slots, 2);
  EXPECT_FALSE(hosts[2].slots.has_value());  // as many as its CPUs
  EXPECT_EQ(hosts[3].name, "10.0.0.7");
  EXPECT_EQ(hosts[3].slots, 8);
}

TEST(Hostfile, ABadLineIsOneErrorNamingFileAndLine) {
  EXPECT_EQ(error_of([] { parse_hostfile("node1 slots=2\nnode2 slots=two\n", "h"); }),
            "h:2: slots='two' is not a whole number from 1 to 1048576");
  EXPECT_EQ(error_of([] { parse_hostfile("node1\n\n# x\nnode2 cpus=4\n", "h"); }),
            "h:4: unknown attribute 'cpus=4' (a line is: host slots=N max_slots=M)");
  EXPECT_EQ(error_of([] { parse_hostfile("no*de slots=1\n", "h"); }), "h:1: 'no*de' is not a host name or address");
  EXPECT_EQ(error_of([] { parse_hostfile("n slots=4 max_slots=2\n", "h"); }),
            "h:1: max_slots=2 is less than slots=4");
  EXPECT_EQ(error_of([] { parse_hostfile("n slots=0\n", "h"); }), "h:1: slots='0' is not a whole number from 1 to 1048576");
  EXPECT_EQ(error_of([] { parse_hostfile("n slots=1 slots=2\n", "h"); }), "h:1: 'slots' given twice");
  EXPECT_EQ(error_of([] { parse_hostfile("# nothing\n\n", "h"); }), "h: names no host");
  EXPECT_NE(error_of([] { read_hostfile("/nonexistent/hosts"); }).find("hostfile /nonexistent/hosts: cannot be read"),
            std::string::npos);
}

TEST(Hostfile, HostLists) {
  auto hosts = parse_host_list("node1:2,node2,[fe80::1]:3,node1:1");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].slots, 3);
  EXPECT_EQ(hosts[1].slots, 1);
  EXPECT_EQ(hosts[2].name, "[fe80::1]");
  EXPECT_EQ(hosts[2].slots, 3);
  EXPECT_EQ(error_of([] { parse_host_list("node1:x"); }),
            "--host: 'node1:x' has a slot count that is not a whole number from 1 to 1048576 (a list is host[:N],...)");
  EXPECT_EQ(error_of([] { parse_host_list("a,,b"); }), "--host: '' is empty (a list is host[:N],...)");
}

TEST(Placement, BySlotFillsEachHostFirst) {
  auto p = place(parse_host_list("a:2,b:2,c:2"), 5, MapBy::slot, false, 1);
  EXPECT_EQ(p.hosts, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p.host_of, (std::vector<int>{0, 0, 1, 1, 2}));
  EXPECT_EQ(p.local_rank, (std::vector<int>{0, 1, 0, 1, 0}));
  EXPECT_EQ(p.local_size, (std::vector<int>{2, 2, 1}));
  EXPECT_EQ(p.map_lines()[4], "rank 4 on c (local rank 0)");
}

TEST(Placement, ByNodeDealsRanksInTurn) {
  auto p = place(parse_host_list("a:2,b:1,c:2"), 5, MapBy::node, false, 1);
  EXPECT_EQ(p.host_of, (std::vector<int>{0, 1, 2, 0, 2}));
  EXPECT_EQ(p.local_rank, (std::vector<int>{0, 0, 0, 1, 1}));
}

TEST(Placement, MoreRanksThanSlotsNeedsOversubscribe) {
  auto hosts = parse_host_list("a:2,b:2");
  EXPECT_EQ(error_of([&] { place(hosts, 5, MapBy::slot, false, 1); }),
            "5 ranks, but the 2 hosts given have 4 slots: ask for fewer ranks, give more slots, or allow more ranks "
            "than slots with --oversubscribe");
  auto p = place(hosts, 6, MapBy::slot, true, 1);
  EXPECT_EQ(p.host_of, (std::vector<int>{0, 0, 1, 1, 0, 1}));
  // max_slots is a hard limit, oversubscribed or not.
  auto capped = parse_hostfile("a slots=1 max_slots=2\nb slots=1 max_slots=1\n", "h");
  EXPECT_EQ(place(capped, 3, MapBy::slot, true, 1).host_of, (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(error_of([&] { place(capped, 4, MapBy::slot, true, 1); }),
            "4 ranks, but the hosts' max_slots allow 3 even oversubscribed");
}

TEST(Placement, UnknownSlotCountsTakeTheDefaultAndUnusedHostsAreLeftOut) {
  auto hosts = parse_hostfile("a\nb\n", "h");
  auto p = place(hosts, 3, MapBy::slot, false, 4);
  EXPECT_EQ(p.hosts, (std::vector<std::string>{"a"}));
  EXPECT_EQ(p.local_size, (std::vector<int>{3}));
  EXPECT_EQ(parse_map_by("node"), MapBy::node);
  EXPECT_EQ(error_of([] { parse_map_by("core"); }), "--map-by: 'core' is not slot or node");
}

TEST(Hostfile, LinesOfOneHostAddUpWithinTheLimits) {
  // 2048 lines of 1048576 slots once overflowed an int; the sum is bounded now.
  EXPECT_EQ(error_of([] { parse_hostfile("a slots=1048576\na slots=1\n", "h"); }),
            "h:2: 'a': its slots add up to more than 1048576");
  EXPECT_EQ(error_of([] { parse_host_list("a:1048576,b,a:1"); }), "--host: 'a': its slots add up to more than 1048576");
  // Each line has max_slots >= slots, and so do the sums.
  EXPECT_EQ(error_of([] { parse_hostfile("a slots=2 max_slots=2\na slots=1\n", "h"); }),
            "h:2: 'a': its max_slots add up to 2, less than its slots, 3");
  auto hosts = parse_hostfile("a slots=2 max_slots=2\na slots=1 max_slots=1\n", "h");
  EXPECT_EQ(hosts[0].slots, 3);
  EXPECT_EQ(hosts[0].max_slots, 3);
}

TEST(Placement, MaxSlotsBoundTheDefaultSlotCount) {
  // A host without slots= counts the CPUs (4 here), but never more than its max_slots.
  auto p = place(parse_hostfile("a max_slots=1\nb\n", "h"), 2, MapBy::slot, false, 4);
  EXPECT_EQ(p.host_of, (std::vector<int>{0, 1}));
  EXPECT_EQ(error_of([] { place(parse_hostfile("a max_slots=1\n", "h"), 2, MapBy::slot, false, 4); }),
            "2 ranks, but the 1 host given have 1 slot: ask for fewer ranks, give more slots, or allow more ranks "
            "than slots with --oversubscribe");
}
