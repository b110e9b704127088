// A rank blocked in a receive must sleep, not spin: every rank but 0 waits for a
// message that rank 0 sends after sleeping (or, with "barrier", in a barrier that rank
// 0 joins then); each measures the CPU time (all its threads) its wait cost. Fails
// when a waiter used more than the given percent of a core, so a runtime that spins
// (100%) cannot pass.
//   idle_cpu [seconds] [max percent] [recv|barrier]
#include <ipc/ipc.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "check.hpp"

namespace {
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  double limit = argc > 2 ? std::atof(argv[2]) : 20.0;
  const bool barrier = argc > 3 && std::string(argv[3]) == "barrier";
  if (c.rank() == 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    if (barrier)
      c.barrier();
    else
      for (int p = 1; p < c.size(); ++p) c.send(p, p, ipc::Tag{5});
  } else {
    double cpu0 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    int v = c.rank();
    if (barrier)
      c.barrier();
    else
      v = c.recv<int>(0, ipc::Tag{5});
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double pct = 100.0 * (cpu_seconds() - cpu0) / wall;
    std::printf("rank %d: blocked %.2f s in a %s using %.2f%% of a core\n", c.rank(), wall, barrier ? "barrier" : "receive",
                pct);
    IT_CHECK(c.rank(), v == c.rank(), "wrong value");
    IT_CHECK(c.rank(), pct < limit, "a blocked %s used %.1f%% of a core (limit %.1f%%)", barrier ? "barrier" : "receive", pct,
             limit);
  }
  return 0;
}
