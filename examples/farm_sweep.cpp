// A parameter sweep as a task farm: rank 0 hands grid points to the other ranks,
// shows progress, and keeps results in a journal so that an interrupted sweep
// resumes where it stopped when run again.
//
//   ipcrun -n 4 farm_sweep [points] [journal]
#include <ipc/ipc.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Point {  // a raw value: travels as bytes
  double x, y;
};

double objective(const Point& p) {
  double v = 0;
  for (int k = 1; k <= 2000; ++k) v += std::sin(k * p.x) * std::cos(k * p.y) / k;
  return v - 0.1 * (p.x * p.x + p.y * p.y);
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  const int side = static_cast<int>(std::sqrt(argc > 1 ? std::atoi(argv[1]) : 2500));
  std::vector<Point> grid;
  for (int i = 0; i < side * side; ++i)
    grid.push_back({-3.0 + 6.0 * (i % side) / side, -3.0 + 6.0 * (i / side) / side});
  ipc::FarmOptions opt;
  opt.progress = true;
  if (argc > 2) opt.journal = argv[2];
  auto values = ipc::farm<double>(rt.world(), grid, objective, opt);
  if (rt.rank() == 0) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < values.size(); ++i)
      if (values[i] > values[best]) best = i;
    std::printf("best %.6f at (%.4f, %.4f) of %zu points\n", values[best], grid[best].x, grid[best].y, values.size());
  }
  return 0;
}
