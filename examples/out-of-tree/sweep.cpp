// A parameter sweep: rank 0 deals out parameters round-robin, every rank evaluates
// its share, and rank 0 collects the best one.
#include <ipc/ipc.hpp>

#include <cmath>
#include <cstdio>
#include <utility>

int main() {
  ipc::Runtime rt;
  auto& comm = rt.world();
  auto cost = [](double x) { return (x - 1.25) * (x - 1.25) + std::sin(5 * x) * 0.1; };
  std::pair<double, double> best{1e300, 0};  // (cost, x)
  for (int i = comm.rank(); i < 1000; i += comm.size()) {
    double x = i * 0.004;
    if (cost(x) < best.first) best = {cost(x), x};
  }
  if (comm.rank() == 0) {
    for (int p = 1; p < comm.size(); ++p) {
      auto other = comm.recv<std::pair<double, double>>(p);
      if (other.first < best.first) best = other;
    }
    std::printf("best x = %.3f (cost %.5f) over %d ranks\n", best.second, best.first, comm.size());
  } else {
    comm.send(best, 0);
  }
}
