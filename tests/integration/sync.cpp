// Semaphores and mutexes: a mutex that 8 ranks contend 10,000 times each never has two
// holders (their logged times do not overlap) and, on one node, guards a plain counter
// in a shared window (no increment lost); a semaphore of 3 never lets more than 3 in;
// try and timed acquires; waiters are served in the order they came (FIFO); a holder
// killed (SIGKILL) gives its unit to the next, who is told (mode "owner_lost", under
// --keep-going). On one node, or across hosts and with
// IPC_TOOLS_HOME=always through the home rank's queue.
#include <ipc/ipc.hpp>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>
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
      w.send(1, 0, ipc::Tag{1});    // rank 0 may now wait for it
      ::kill(::getpid(), SIGKILL);  // dies holding it
    }
    if (w.rank() == 0) {
      w.recv<int>(1, ipc::Tag{1});
      ipc::SemaphoreGuard g(m);  // waits until rank 1 is found dead
      CHECK(g.owner_lost(), "the mutex of a dead holder came without word");
      std::printf("owner_lost: rank 0 got the dead holder's mutex and was told\n");
    }
    return 0;
  }

  // Each rank logs when it held the lock (the monotonic clock, which the ranks of one
  // machine share, virtual hosts too); rank 0 then finds the most holders at once.
  using Clock = std::chrono::steady_clock;
  auto most_inside = [&](const std::vector<std::int64_t>& mine) {
    auto all = w.gatherv(mine, 0);
    std::vector<std::pair<std::int64_t, int>> events;  // (time, +1 enter / -1 leave)
    for (std::size_t i = 0; i + 1 < all.size(); i += 2) {
      events.emplace_back(all[i], 1);
      events.emplace_back(all[i + 1], -1);
    }
    std::sort(events.begin(), events.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;  // leave first on a tie
    });
    int now = 0, most = 0;
    for (auto& e : events) most = std::max(most, now += e.second);
    return most;
  };
  auto stamp = [] { return static_cast<std::int64_t>(Clock::now().time_since_epoch().count()); };
  bool one_node = w.split_by_node().size() == n;
  const int rounds = one_node ? 10000 : 1000;

  // Mutual exclusion under contention: never two holders; on one node also a plain
  // (non-atomic) counter in a window, which loses increments without it.
  ipc::Mutex m(w);
  std::vector<std::int64_t> held;
  held.reserve(2 * static_cast<std::size_t>(rounds));
  std::optional<ipc::SharedWindow<long>> counter;
  if (one_node) counter.emplace(w, w.rank() == 0 ? 1 : 0);
  long* c = one_node ? &counter->slice(0)[0] : nullptr;
  for (int k = 0; k < rounds; ++k) {
    std::lock_guard lk(m);
    held.push_back(stamp());
    if (c) {
      long v = *c;
      *c = v + 1;
    }
    held.push_back(stamp());
  }
  if (counter) {
    counter->fence();
    CHECK(*c == static_cast<long>(rounds) * n, "mutex: the counter is %ld, expected %ld", *c,
          static_cast<long>(rounds) * n);
  }
  int most = most_inside(held);
  CHECK(g_me != 0 || most == 1, "mutex: %d holders at once", most);

  // A semaphore of 3: at most 3 inside at once.
  ipc::Semaphore three(w, 3);
  held.clear();
  for (int k = 0; k < rounds / 5; ++k) {
    ipc::SemaphoreGuard g(three);
    held.push_back(stamp());
    held.push_back(stamp());
  }
  most = most_inside(held);
  CHECK(g_me != 0 || (most >= 1 && most <= 3), "semaphore of 3: %d ranks were inside at once", most);
  w.barrier();
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
  // FIFO: rank 0 holds a mutex; ranks 1..n-1 queue one after another (rank k starts
  // once rank 0 sees k waiting); each, holding it, reports to rank 0 and waits for
  // the answer before it releases, so rank 0 hears them in the order they got it.
  ipc::Mutex fifo(w);
  const int me = w.rank();
  if (me == 0) {
    fifo.lock();
    for (int k = 1; k < n; ++k) {
      w.send(1, k, ipc::Tag{5});
      while (fifo.waiting() < static_cast<std::uint64_t>(k)) ::usleep(200);
    }
    fifo.unlock();
    for (int k = 1; k < n; ++k) {
      ipc::Status st;
      int who = w.recv<int>(ipc::any_source, ipc::Tag{6}, &st);
      CHECK(who == k, "mutex: rank %d got it in turn %d (FIFO order: rank %d)", who, k, k);
      w.send(1, st.source, ipc::Tag{7});
    }
    CHECK(fifo.waiting() == 0, "mutex: %llu still waiting", static_cast<unsigned long long>(fifo.waiting()));
  } else {
    w.recv<int>(0, ipc::Tag{5});
    std::lock_guard lk(fifo);
    w.send(me, 0, ipc::Tag{6});
    w.recv<int>(0, ipc::Tag{7});
  }
  w.barrier();
  if (g_me == 0) std::printf("sync: %d ranks ok\n", n);
  return 0;
}
