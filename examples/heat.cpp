// Heat diffusion on a square plate: the top edge is held at 100 degrees, the other
// edges at 0, and Jacobi iterations relax the interior until no point changes by
// more than the tolerance.
//
// The rows of the plate are dealt out to the ranks. Each iteration a rank posts the
// receives of its two halo rows (the neighbours' edge rows), sends its own edge rows,
// updates the rows that need no halo while the messages travel, then the two edge
// rows, and the ranks agree on the largest change with an allreduce (ipc::op::max).
// Every point is computed from the same values in the same order whatever the number
// of ranks, and the maximum does not depend on the order it is taken in, so the
// output is the same for any number of ranks.
//
//     ipcrun -n 4 ./heat [SIZE [TOLERANCE]]        (default 128 and 1e-3)
//
// prints "iterations: N" and "residual: R" (6 significant digits).
#include <ipc/ipc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  ipc::Runtime rt;
  const auto& world = rt.world();
  const int n = argc > 1 ? std::atoi(argv[1]) : 128;  // interior points per side
  const double tolerance = argc > 2 ? std::atof(argv[2]) : 1e-3;
  const int max_iterations = 100000;
  const int p = world.size(), me = world.rank();
  if (n < p || n < 1) {
    if (me == 0) std::fprintf(stderr, "heat: a plate of %d rows cannot be dealt to %d ranks\n", n, p);
    return 2;
  }

  // This rank's interior rows [first, first + rows) of 1..n; local row 0 and rows + 1
  // are halos (or the plate's edges).
  const int first = 1 + n * me / p, rows = n * (me + 1) / p - n * me / p;
  const int width = n + 2;
  std::vector<double> u(static_cast<std::size_t>((rows + 2) * width), 0.0), next(u);
  auto row = [&](std::vector<double>& a, int r) {
    return std::span<double>(a.data() + static_cast<std::ptrdiff_t>(r) * width, static_cast<std::size_t>(width));
  };
  if (first == 1)  // the hot edge
    for (auto* a : {&u, &next}) std::fill(row(*a, 0).begin(), row(*a, 0).end(), 100.0);

  const int up = me > 0 ? me - 1 : -1, down = me < p - 1 ? me + 1 : -1;
  const ipc::Tag to_up{1}, to_down{2};
  auto relax = [&](int r, double& change) {
    auto above = row(u, r - 1), here = row(u, r), below = row(u, r + 1), out = row(next, r);
    for (int c = 1; c <= n; ++c) {
      out[c] = 0.25 * (above[c] + below[c] + here[c - 1] + here[c + 1]);
      change = std::max(change, std::fabs(out[c] - here[c]));
    }
  };

  int iterations = 0;
  double residual = 0;
  do {
    std::vector<ipc::Request> halo;
    std::span<const double> top = row(u, 1), bottom = row(u, rows);  // sent from where they are
    if (up >= 0) {
      halo.push_back(world.irecv(row(u, 0), up, to_down));
      halo.push_back(world.isend(top, up, to_up));
    }
    if (down >= 0) {
      halo.push_back(world.irecv(row(u, rows + 1), down, to_up));
      halo.push_back(world.isend(bottom, down, to_down));
    }
    double change = 0;
    for (int r = 2; r < rows; ++r) relax(r, change);  // needs no halo
    ipc::wait_all(halo);
    relax(1, change);
    if (rows > 1) relax(rows, change);
    residual = world.allreduce(change, ipc::op::max{});
    std::swap(u, next);
    ++iterations;
  } while (residual > tolerance && iterations < max_iterations);

  if (me == 0) {
    std::printf("iterations: %d\n", iterations);
    std::printf("residual: %.6g\n", residual);
  }
  return 0;
}
