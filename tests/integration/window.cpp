// Shared windows: visibility after a fence (rounds of writes and reads of every slice
// of the node), atomics from every rank, slices of other nodes refused; file-backed
// windows written by one job and reopened by the next, a mismatched reopen refused.
//   it_window                 the shared-memory checks
//   it_window write PATH      fills a file-backed window
//   it_window reopen PATH     checks what the last job left, then adds a round
//   it_window mismatch PATH   reopens as another type and as other slices: refused
#include <ipc/ipc.hpp>

#include <cstring>
#include <string>

#include "check.hpp"

namespace {
int g_me = 0;
#define CHECK(cond, ...) IT_CHECK(g_me, cond, __VA_ARGS__)

std::size_t len(int rank) { return 100 + static_cast<std::size_t>(rank) * 37; }  // slices differ

void shared(const ipc::Communicator& c) {
  ipc::SharedWindow<long> w(c, len(c.rank()));
  CHECK(w.local().size() == len(c.rank()), "local slice of %zu", w.local().size());
  for (long x : w.local()) CHECK(x == 0, "a new window is not zeroed");
  for (int round = 0; round < 50; ++round) {
    auto mine = w.local();
    for (std::size_t i = 0; i < mine.size(); ++i) mine[i] = round * 1000000L + c.rank() * 1000L + static_cast<long>(i);
    w.fence();
    for (int r : w.ranks_here()) {
      auto s = w.slice(r);
      CHECK(s.size() == len(r), "slice of rank %d: %zu elements", r, s.size());
      for (std::size_t i = 0; i < s.size(); ++i)
        CHECK(s[i] == round * 1000000L + r * 1000L + static_cast<long>(i), "round %d: rank %d's element %zu is %ld",
              round, r, i, s[i]);
    }
    w.fence();  // all have read before the next round writes
  }
  // Atomics: every rank adds 10,000 times to the first element of the node's first
  // rank, and counts with compare-exchange on the second.
  ipc::SharedWindow<std::int64_t> a(c, 2);
  int home = a.ranks_here().front();
  for (int k = 0; k < 10000; ++k) a.fetch_add(home, 0, 1);
  for (int k = 0; k < 1000; ++k) {
    std::int64_t seen = a.load(home, 1);
    while (!a.compare_exchange(home, 1, seen, seen + 1)) {
    }
  }
  a.fence();
  auto here = static_cast<std::int64_t>(a.ranks_here().size());
  CHECK(a.load(home, 0) == 10000 * here, "fetch_add: %lld, expected %lld", static_cast<long long>(a.load(home, 0)),
        static_cast<long long>(10000 * here));
  CHECK(a.load(home, 1) == 1000 * here, "compare_exchange: %lld", static_cast<long long>(a.load(home, 1)));
  // A rank of another node, or no rank at all: refused.
  bool refused = false;
  try {
    (void)w.slice(c.size());
  } catch (const ipc::UsageError& e) {
    refused = std::strstr(e.what(), "does not share this node's region") != nullptr;
  }
  CHECK(refused, "a slice of rank %d (of %d) was not refused", c.size(), c.size());
  for (int r = 0; r < c.size(); ++r) {  // across hosts: a rank of another node's region
    bool here = false;
    for (int q : w.ranks_here()) here |= q == r;
    if (here) continue;
    refused = false;
    try {
      (void)w.slice(r);
    } catch (const ipc::UsageError&) {
      refused = true;
    }
    CHECK(refused, "a slice of rank %d, on another node, was not refused", r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& w = rt.world();
  g_me = w.rank();
  std::string mode = argc > 1 ? argv[1] : "shared";
  std::string path = argc > 2 ? argv[2] : "";
  if (mode == "shared") {
    shared(w);
    shared(w.split(w.rank() % 2));  // windows of sub-communicators too
  } else if (mode == "write" || mode == "reopen") {
    ipc::SharedWindow<double> f(w, len(w.rank()), ipc::WindowFile{path});
    auto mine = f.local();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      double want = mode == "write" ? 0.0 : w.rank() + 0.5 * static_cast<double>(i);
      CHECK(mine[i] == want, "%s: element %zu is %g, expected %g", mode.c_str(), i, mine[i], want);
      mine[i] = w.rank() + 0.5 * static_cast<double>(i);
    }
    f.fence();
    f.flush();
  } else if (mode == "mismatch") {
    std::string what;
    try {
      ipc::SharedWindow<float> f(w, len(w.rank()), ipc::WindowFile{path});
    } catch (const ipc::UsageError& e) {
      what = e.what();
    }
    CHECK(what.find(path) != std::string::npos && what.find("type") != std::string::npos,
          "a window of floats reopened a file of doubles: '%s'", what.c_str());
    what.clear();
    try {
      ipc::SharedWindow<double> f(w, len(w.rank()) + 1, ipc::WindowFile{path});
    } catch (const ipc::UsageError& e) {
      what = e.what();
    }
    CHECK(what.find(path) != std::string::npos && what.find("slice") != std::string::npos,
          "other slices reopened the file: '%s'", what.c_str());
  }
  w.barrier();
  if (g_me == 0) std::printf("window %s: %d ranks ok\n", mode.c_str(), w.size());
  return 0;
}
