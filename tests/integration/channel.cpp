// Channels: items of many producers reach many consumers exactly once, in order per
// producer, through a small channel (full and empty often); try and timed forms;
// close() wakes every waiter and refuses pushes; a producer that dies loses nothing it
// pushed; a consumer waiting when the host dies gets PeerLost. The same program tests
// the home's queue (IPC_TOOLS_HOME=always, or ranks on several hosts).
// A producer killed in the middle of a push (mode "killed_mid_push"): the cell it had
// claimed is repaired, and another producer's items behind it all arrive.
// A consumer killed in the middle of a pop (mode "killed_mid_pop"): the cell it had
// taken is freed, so pushes go on past the capacity.
//   it_channel [all [ITEMS_PER_PRODUCER] | producer_dies | host_dies | killed_mid_push | killed_mid_pop]
#include <ipc/ipc.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"

namespace {
int g_me = 0;
#define CHECK(cond, ...) IT_CHECK(g_me, cond, __VA_ARGS__)
struct Item {
  int from;
  long seq;
};
struct Big {  // copying one takes long enough that a kill usually lands inside a push
  int from;
  long seq;
  char pad[512 * 1024];
};
Big g_big;
}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& w = rt.world();
  g_me = w.rank();
  int n = w.size(), me = w.rank();
  std::string mode = argc > 1 ? argv[1] : "all";
  if (mode == "producer_dies") {  // rank 1 pushes 100 items and dies; rank 0 gets all 100
    ipc::Channel<Item> ch(w, 256);
    if (me == 1) {
      for (long k = 0; k < 100; ++k) ch.push(Item{1, k});
      w.send(1, 0, ipc::Tag{1});
      std::_Exit(3);
    }
    if (me == 0) {
      w.recv<int>(1, ipc::Tag{1});
      for (long k = 0; k < 100; ++k) {
        auto it = ch.try_pop();
        CHECK(it && it->seq == k, "item %ld of a dead producer: %s", k, it ? "out of order" : "lost");
      }
      std::printf("producer_dies: nothing lost\n");
    }
    return 0;
  }
  if (mode == "killed_mid_push") {  // 3 ranks: 0 consumes and kills 1; 2 pushes after
    ipc::Channel<Big> ch(w, 8);
    ipc::SharedWindow<long> progress(w, me == 0 ? 2 : 0);  // rank 1: pushes begun, ended
    if (me == 1) {
      w.send(static_cast<int>(::getpid()), 0, ipc::Tag{1});
      for (long k = 0;; ++k) {
        g_big.from = 1;
        g_big.seq = k;
        progress.store(0, 0, k + 1);
        ch.push(g_big);
        progress.store(0, 1, k + 1);
      }
    }
    if (me == 0) {
      auto pid = w.recv<int>(1, ipc::Tag{1});
      for (long k = 0; k < 40; ++k) {
        auto it = ch.pop();
        CHECK(it && it->from == 1 && it->seq == k, "item %ld of rank 1", k);
      }
      ::kill(pid, SIGKILL);  // usually inside a push: rank 0 popped, so there was room
      while (!ipc::detail::CommAccess::gone(w, 1)) ::usleep(1000);
      long begun = progress.load(0, 0), ended = progress.load(0, 1);
      w.send(1, 2, ipc::Tag{2});  // rank 2 may push now
      long from1 = 40, from2 = 0;
      while (from2 < 50) {
        auto it = ch.pop();
        CHECK(it.has_value(), "the channel ended");
        if (it->from == 1) {
          CHECK(it->seq == from1, "rank 1's item %ld came as %ld", from1, it->seq);
          ++from1;
        } else {
          CHECK(it->seq == from2, "rank 2's item %ld came as %ld", from2, it->seq);
          ++from2;
        }
      }
      CHECK(from1 >= ended && from1 <= begun, "rank 1 pushed %ld (began %ld), %ld arrived", ended, begun, from1);
      std::printf("killed_mid_push: all 50 items of rank 2 arrived; rank 1 was killed %s a push\n",
                  begun > ended ? "inside" : "outside");
    }
    if (me == 2) {
      w.recv<int>(0, ipc::Tag{2});
      for (long k = 0; k < 50; ++k) {
        g_big.from = 2;
        g_big.seq = k;
        ch.push(g_big);
      }
    }
    return 0;
  }
  if (mode == "killed_mid_pop") {  // 3 ranks: 0 produces and kills 1; 2 consumes after
    ipc::Channel<Big> ch(w, 8);
    if (me == 1) {
      w.send(static_cast<int>(::getpid()), 0, ipc::Tag{1});
      for (;;) (void)ch.pop();
    }
    if (me == 0) {
      auto pid = w.recv<int>(1, ipc::Tag{1});
      for (long k = 0; k < 40; ++k) {
        g_big.from = 0;
        g_big.seq = k;
        ch.push(g_big);
      }
      ::kill(pid, SIGKILL);  // usually inside a pop: rank 0 pushed, so there was an item
      while (!ipc::detail::CommAccess::gone(w, 1)) ::usleep(1000);
      w.send(1, 2, ipc::Tag{2});  // rank 2 may pop now
      for (long k = 0; k < 3 * 8; ++k) {  // three times the capacity: needs every cell
        g_big.seq = 1000 + k;
        ch.push(g_big);
      }
      ch.close();
    }
    if (me == 2) {
      w.recv<int>(0, ipc::Tag{2});
      long last = -1, got = 0;
      while (auto it = ch.pop()) {
        if (it->seq >= 1000) {
          CHECK(it->seq > last, "item %ld after %ld", it->seq, last);
          last = it->seq;
          ++got;
        }
      }
      CHECK(got == 24, "%ld of the 24 items pushed after the kill arrived", got);
      std::printf("killed_mid_pop: all 24 items pushed after the kill arrived\n");
    }
    return 0;
  }
  if (mode == "host_dies") {  // rank 0 (the host) dies while rank 1 waits to pop
    ipc::Channel<Item> ch(w, 8);
    if (me == 0) {
      w.recv<int>(1, ipc::Tag{1});
      std::_Exit(3);
    }
    if (me == 1) {
      w.send(1, 0, ipc::Tag{1});
      try {
        (void)ch.pop();
        CHECK(false, "a pop outlived the channel's host");
      } catch (const ipc::PeerLost& e) {
        std::printf("host_dies: %s\n", e.what());
      }
    }
    return 0;
  }

  // Exactly once, in order per producer, many each way, through 4 cells.
  ipc::Channel<Item> ch(w, 4);
  CHECK(ch.capacity() == 4, "capacity %zu", ch.capacity());
  const long per = argc > 2 ? std::atol(argv[2]) : 3000;
  int producers = n == 1 ? 1 : n / 2;
  bool producer = me < producers;
  auto side = w.split(producer ? 0 : 1);
  std::vector<long> got(static_cast<std::size_t>(producers), 0);
  long popped = 0, wrong = 0;
  auto consume = [&] {
    while (auto it = ch.pop()) {
      auto& next = got[static_cast<std::size_t>(it->from)];
      if (it->seq != next) ++wrong;  // one consumer: exactly the order; several: increasing
      next = it->seq + 1;
      ++popped;
    }
  };
  if (producer) {
    if (n == 1) {  // alone: push and pop in turns
      for (long k = 0; k < per; ++k) {
        while (!ch.try_push(Item{0, k})) {
          auto it = ch.try_pop();
          CHECK(it && it->seq == popped, "alone: item %ld", popped);
          ++popped;
        }
      }
      while (auto it = ch.try_pop()) ++popped;
      ch.close();
    } else {
      for (long k = 0; k < per; ++k) ch.push(Item{me, k});
      side.barrier();
      if (side.rank() == 0) ch.close();
    }
  } else {
    consume();
  }
  long total = w.allreduce(popped), bad = w.allreduce(wrong);
  if (n > 2) bad = 0;  // several consumers: each sees increasing numbers, not all of them
  CHECK(total == per * producers && bad == 0, "popped %ld of %ld (%ld out of order)", total, per * producers, bad);
  // After close: pushes refused, pops empty at once, timed forms return.
  bool refused = false;
  try {
    ch.push(Item{me, 0});
  } catch (const ipc::ChannelClosed&) {
    refused = true;
  }
  CHECK(refused && ch.closed(), "a push after close() was not refused");
  CHECK(!ch.pop() && !ch.try_pop_for(std::chrono::milliseconds(5)), "a closed, empty channel gave an item");

  // Close while pushes wait for room (or come after it): each fails with
  // ChannelClosed, and the items that were in stay poppable.
  ipc::Channel<int> full(w, 2);
  if (me == 0) CHECK(full.try_push(1) && full.try_push(2), "filling a channel of 2");
  w.barrier();
  if (me == 0) {
    full.close();
  } else {
    bool closed = false;
    try {
      full.push(3);  // full: waits until the close
    } catch (const ipc::ChannelClosed&) {
      closed = true;
    }
    CHECK(closed, "a push waiting in a full channel was not ended by close()");
  }
  w.barrier();
  if (me == 0) {
    auto a = full.try_pop(), b = full.try_pop(), c = full.try_pop();
    CHECK(a == 1 && b == 2 && !c, "the items of a closed channel");
  }

  // Timed forms on a fresh channel: an empty pop and a full push time out.
  ipc::Channel<int> small(w, 1);
  CHECK(small.capacity() == 2, "a channel of 1 has %zu cells, expected 2", small.capacity());
  w.barrier();
  if (me == 0) {
    CHECK(!small.try_pop_for(std::chrono::milliseconds(10)), "a timed pop of an empty channel");
    CHECK(small.try_push(7) && small.try_push(8), "try_push into an empty channel");
    CHECK(!small.try_push(9), "try_push into a full channel");
    CHECK(!small.try_push_for(9, std::chrono::milliseconds(10)), "a timed push into a full channel");
    CHECK(small.try_pop() == 7 && small.try_pop() == 8, "try_pop in order");
  }
  w.barrier();
  if (me == 0) std::printf("channel: %d ranks ok\n", n);
  return 0;
}
