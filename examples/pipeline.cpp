// Producers -> a bounded channel -> consumers, on the ranks of one node: the first
// half of the ranks produce numbered items, the others consume them, and the run
// prints the throughput and checks that every item arrived exactly once, in order
// per producer.
//
//     ipcrun -n 6 ./pipeline [ITEMS [CAPACITY]]     (default 200000 items, 1024 cells)
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

struct Item {
  int producer;
  long seq;
  double payload;
};

int main(int argc, char** argv) {
  ipc::Runtime rt;
  const auto& world = rt.world();
  const long items = argc > 1 ? std::atol(argv[1]) : 200000;
  const std::size_t capacity = argc > 2 ? static_cast<std::size_t>(std::atol(argv[2])) : 1024;
  ipc::Communicator node = world.split_by_node();  // a channel is a node's
  const int p = node.size(), me = node.rank();
  const int producers = std::max(1, p / 2);
  const bool producing = me < producers || p == 1;
  ipc::Channel<Item> channel(node, capacity);
  ipc::Communicator side = node.split(producing ? 0 : 1);  // the producers, the consumers

  node.barrier();
  auto t0 = std::chrono::steady_clock::now();
  long pushed = 0, popped = 0, out_of_order = 0;
  double sum_in = 0, sum_out = 0;
  auto consume = [&] {
    std::vector<long> last_seen(static_cast<std::size_t>(producers), -1);
    while (auto it = channel.pop()) {
      auto& last = last_seen[static_cast<std::size_t>(it->producer)];
      if (it->seq <= last) ++out_of_order;
      last = it->seq;
      sum_out += it->payload;
      ++popped;
    }
  };
  std::thread alone;  // a job of one rank consumes on a second thread
  if (p == 1) alone = std::thread(consume);
  if (producing) {
    long first = items * me / producers, last = items * (me + 1) / producers;
    for (long k = first; k < last; ++k) {
      Item it{me, k, 0.5 * static_cast<double>(k)};
      channel.push(it);
      sum_in += it.payload;
      ++pushed;
    }
    side.barrier();  // every producer is done: the first one closes
    if (side.rank() == 0) channel.close();
  }
  if (!producing) consume();
  if (alone.joinable()) alone.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  pushed = node.allreduce(pushed);
  popped = node.allreduce(popped);
  out_of_order = node.allreduce(out_of_order);
  sum_in = node.allreduce(sum_in);
  sum_out = node.allreduce(sum_out);
  secs = node.allreduce(secs, ipc::op::max{});
  bool ok = pushed == items && popped == items && out_of_order == 0 && sum_in == sum_out;
  const int consumers = p == 1 ? 1 : p - producers;
  if (me == 0)
    std::printf("pipeline: %d producer%s -> channel of %zu -> %d consumer%s: %ld items in %.3f s (%.0f items/s), %s\n",
                producers, producers == 1 ? "" : "s", channel.capacity(), consumers, consumers == 1 ? "" : "s", popped,
                secs, static_cast<double>(popped) / secs,
                ok ? "each exactly once, in order per producer" : "LOST, DUPLICATED OR REORDERED ITEMS");
  return ok ? 0 : 1;
}
