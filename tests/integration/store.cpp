// The job's key-value store through ipcrun and its agents, as a rank's bootstrap
// sees it: values replaced between fences come back new, gets wait for puts from
// other hosts, and many ranks asking one key at once are all answered.
//   store   (run under ipcrun, any number of ranks on any hosts)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bootstrap/bootstrap.hpp"
#include "bootstrap/store.hpp"

namespace {
int failures = 0;
void check(bool ok, const std::string& what, int rank) {
  if (!ok) {
    std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
    ++failures;
  }
}
}  // namespace

int main() {
  using namespace std::chrono_literals;
  auto job = ipc::bootstrap::read_environment();
  if (job.singleton) {
    std::fprintf(stderr, "store: run me under ipcrun\n");
    return 2;
  }
  auto store = ipc::bootstrap::open_store(job);
  int me = job.rank, n = job.size;
  // Generation 1: every rank's key; the last rank also publishes "late" after the fence.
  store->put("gen/" + std::to_string(me), "one");
  auto all = store->fence();
  for (int r = 0; r < n; ++r) check(all["gen/" + std::to_string(r)] == "one", "first fence: gen/" + std::to_string(r), me);
  if (me == n - 1) store->put("late", "here");
  check(store->get("late", 30s) == "here", "get of a key put by another rank after the fence", me);
  // Generation 2: the same keys replaced; the fence must carry the new values.
  store->put("gen/" + std::to_string(me), "two-" + std::to_string(me));
  all = store->fence();
  for (int r = 0; r < n; ++r)
    check(all["gen/" + std::to_string(r)] == "two-" + std::to_string(r), "second fence: gen/" + std::to_string(r), me);
  // Generation 3: nothing new; still every pair.
  all = store->fence();
  check(all.size() == static_cast<std::size_t>(n) + 1, "third fence: " + std::to_string(all.size()) + " pairs", me);
  if (me == 0) std::printf("store: %d ranks, 3 fences, %s\n", n, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
