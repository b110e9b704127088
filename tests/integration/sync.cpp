// Semaphores and mutexes of one node: a mutex that 8 ranks contend 10,000 times each
// guards a plain counter in a shared window (mutual exclusion: no increment lost); a
// semaphore of 3 never lets more than 3 in; try and timed acquires; a holder that dies
// gives its unit to the next, who is told (mode "owner_lost", under --keep-going).
#include <ipc/ipc.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "check.hpp"

namespace {
int g_me = 0;
#define CHECK(cond, ...) IT_CHECK(g_me, cond, __VA_ARGS__)
}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& w = rt.world();
  g_me = w.rank();
  int n = w.size();
  std::string mode = argc > 1 ? argv[1] : "all";
  if (mode == "owner_lost") {
    ipc::Mutex m(w);
    if (w.rank() == 1) {
      m.lock();
      w.send(1, 0, ipc::Tag{1});  // rank 0 may now wait for it
      std::_Exit(3);              // dies holding it
    }
    if (w.rank() == 0) {
      w.recv<int>(1, ipc::Tag{1});
      ipc::SemaphoreGuard g(m);  // waits until rank 1 is found dead
      CHECK(g.owner_lost(), "the mutex of a dead holder came without word");
      std::printf("owner_lost: rank 0 got the dead holder's mutex and was told\n");
    }
    return 0;
  }

  // Mutual exclusion under contention: a plain (non-atomic) counter in a window.
  ipc::Mutex m(w);
  ipc::SharedWindow<long> counter(w, w.rank() == 0 ? 1 : 0);
  long& c = counter.slice(0)[0];
  const int rounds = 10000;
  for (int k = 0; k < rounds; ++k) {
    std::lock_guard lk(m);
    long v = c;
    c = v + 1;
  }
  counter.fence();
  CHECK(c == static_cast<long>(rounds) * n, "mutex: the counter is %ld, expected %ld", c, static_cast<long>(rounds) * n);

  // A semaphore of 3: at most 3 inside at once.
  ipc::Semaphore three(w, 3);
  ipc::SharedWindow<std::int64_t> inside(w, w.rank() == 0 ? 2 : 0);
  for (int k = 0; k < 2000; ++k) {
    ipc::SemaphoreGuard g(three);
    std::int64_t now = inside.fetch_add(0, 0, 1) + 1;
    std::int64_t most = inside.load(0, 1);
    while (now > most && !inside.compare_exchange(0, 1, most, now)) {
    }
    inside.fetch_add(0, 0, -1);
  }
  inside.fence();
  std::int64_t most = inside.load(0, 1);
  CHECK(most >= 1 && most <= 3, "semaphore of 3: %lld ranks were inside at once", static_cast<long long>(most));
  CHECK(three.available() == 3, "semaphore of 3: %llu free at the end", static_cast<unsigned long long>(three.available()));

  // try_acquire and timed acquires.
  ipc::Semaphore one(w, 1);
  if (w.rank() == 0) {
    CHECK(one.try_acquire(), "try_acquire of a free unit");
    CHECK(!one.try_acquire(), "try_acquire of a taken unit");
  }
  w.barrier();
  if (w.rank() != 0) CHECK(!one.try_acquire_for(std::chrono::milliseconds(20)), "a timed acquire of a held unit");
  w.barrier();
  if (w.rank() == 0) one.release();
  if (w.rank() == n - 1) CHECK(one.try_acquire_for(std::chrono::seconds(60)), "a timed acquire of a released unit");
  if (w.rank() == n - 1) one.release();
  bool refused = false;
  try {
    one.release();  // holds none
  } catch (const ipc::UsageError&) {
    refused = true;
  }
  CHECK(refused, "a release without a unit was not refused");
  w.barrier();
  if (g_me == 0) std::printf("sync: %d ranks ok\n", n);
  return 0;
}
