// The ranks of a node fill one matrix in a shared window, each its own rows, and read
// all of it in place after a fence; the window lives in a file, so the next run finds
// the last run's matrix, checks it, and writes the next generation.
//
//     ipcrun -n 4 ./shared_matrix [FILE [SIZE]]     (default shared_matrix.win, 256)
//
// Element (i, j) of generation g is g * 1e6 + i * SIZE + j. Each run prints the
// generation it found, the one it wrote, and the sum of the matrix as every rank reads
// it (the same on every rank).
#include <ipc/ipc.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  ipc::Runtime rt;
  const auto& world = rt.world();
  const std::string file = argc > 1 ? argv[1] : "shared_matrix.win";
  const int n = argc > 2 ? std::atoi(argv[2]) : 256;
  // Rows dealt to the ranks of this node (the window is per node).
  ipc::Communicator node = world.split_by_node();
  const int p = node.size(), me = node.rank();
  if (n < p) {
    if (me == 0) std::fprintf(stderr, "shared_matrix: %d rows cannot be dealt to %d ranks\n", n, p);
    return 2;
  }
  const int first = n * me / p, rows = n * (me + 1) / p - first;
  ipc::SharedWindow<double> m(node, static_cast<std::size_t>(rows) * n, ipc::WindowFile{file});
  auto at = [&](int i, int j) -> double& {  // any element, in whichever rank's slice holds row i
    int owner = 0;
    while (n * (owner + 1) / p <= i) ++owner;
    int rank = m.ranks_here()[static_cast<std::size_t>(owner)];
    return m.slice(rank)[static_cast<std::size_t>(i - n * owner / p) * n + j];
  };
  auto value = [&](double g, int i, int j) { return g * 1e6 + static_cast<double>(i) * n + j; };

  // What the last run left: generation 0 for a new file (all zero).
  const double found = std::floor(at(0, 0) / 1e6);
  long wrong = 0;
  for (int i = first; i < first + rows; ++i)
    for (int j = 0; j < n; ++j)
      if (found > 0 && at(i, j) != value(found, i, j)) ++wrong;
  wrong = node.allreduce(wrong);
  m.fence();  // everyone has read the old generation before anyone writes the new one
  const double g = found + 1;
  for (int i = first; i < first + rows; ++i)
    for (int j = 0; j < n; ++j) at(i, j) = value(g, i, j);
  m.fence();
  double sum = 0;  // read all of it, the other ranks' rows in place
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) sum += at(i, j);
  const double expect = g * 1e6 * n * n + (static_cast<double>(n) * n - 1) * n * n / 2;
  bool all = node.allreduce(sum == expect ? 1 : 0, ipc::op::min{}) == 1;
  m.flush();
  if (me == 0) {
    if (found > 0)
      std::printf("reopened %s: generation %.0f, %s\n", file.c_str(), found,
                  wrong == 0 ? "intact" : (std::to_string(wrong) + " elements differ").c_str());
    else
      std::printf("new %s: %d x %d doubles on %d ranks\n", file.c_str(), n, n, p);
    std::printf("wrote generation %.0f; sum %.6g as every rank reads it: %s\n", g, sum, all ? "agreed" : "DIFFERS");
  }
  return wrong == 0 && all ? 0 : 1;
}
