// A program that only polls: rank 0 tests (never waits on) a receive from rank 1,
// which ends without sending. test() must throw ipc::PeerLost, as wait() would, on
// every transport, and in bounded time (here 10 s at most).
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  c.barrier();
  if (c.rank() == 1) std::_Exit(0);  // gone without sending
  int value = 0;
  auto r = c.irecv(value, 1, ipc::Tag{1});
  auto start = std::chrono::steady_clock::now();
  try {
    while (!r.test()) {
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(10)) {
        std::fprintf(stderr, "rank 0: test() still pending after 10 s; rank 1 is gone\n");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  } catch (const ipc::PeerLost& e) {
    std::printf("rank 0: test() reported it: %s\n", e.what());
    return 0;
  }
  std::fprintf(stderr, "rank 0: the receive completed from a rank that sent nothing\n");
  return 1;
}
