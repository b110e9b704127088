// A parameter sweep by remote procedure calls: rank 0 hands out points of a grid to
// the other ranks with `evaluate` calls, at most a few in flight per rank, and keeps
// the best result; every rank also answers `stats` (how many points it evaluated).
//
//   ipcrun -n 4 rpc_sweep [points]
#include <ipc/ipc.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

namespace {

// Something worth computing remotely: a bumpy function of two parameters.
double objective(double x, double y) {
  double v = 0;
  for (int k = 1; k <= 200; ++k) v += std::sin(k * x) * std::cos(k * y) / k;
  return v - 0.1 * (x * x + y * y);
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& world = rt.world();
  const int points = argc > 1 ? std::atoi(argv[1]) : 4096;
  const int side = static_cast<int>(std::sqrt(points));
  long evaluated = 0;
  {
    ipc::Rpc rpc(world);
    // Typed handles: calls are checked against the procedures' types when compiled.
    // A call that reaches a rank before its definition waits for it: no barrier.
    auto evaluate = rpc.define("evaluate", [&evaluated](double x, double y) {
      ++evaluated;
      return objective(x, y);
    });
    auto stats = rpc.define("stats", [&evaluated]() { return evaluated; });

    if (world.rank() == 0) {
      const int workers = world.size() > 1 ? world.size() - 1 : 1;
      auto worker = [&](int i) { return world.size() > 1 ? 1 + i % workers : 0; };
      std::deque<std::pair<std::pair<double, double>, ipc::Future<double>>> inflight;
      double best = -1e300, bx = 0, by = 0;
      auto take = [&] {
        auto [p, f] = std::move(inflight.front());
        inflight.pop_front();
        double v = f.get();
        if (v > best) best = v, bx = p.first, by = p.second;
      };
      for (int i = 0; i < side * side; ++i) {
        double x = -3.0 + 6.0 * (i % side) / side, y = -3.0 + 6.0 * (i / side) / side;
        inflight.emplace_back(std::make_pair(x, y), evaluate.call(worker(i), x, y));
        if (static_cast<int>(inflight.size()) >= 4 * workers) take();
      }
      while (!inflight.empty()) take();
      std::printf("best %.6f at (%.4f, %.4f) of %d points\n", best, bx, by, side * side);
      auto counts = ipc::when_all(stats.call_all()).get();
      for (int r = 0; r < world.size(); ++r) std::printf("rank %d evaluated %ld\n", r, counts[r]);
    }
  }
  return 0;
}
