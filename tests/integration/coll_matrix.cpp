// Every collective at sizes 0, 1, 7, 4 KiB and 4 MiB (of elements of 4 bytes), from
// every root (the 4 MiB ones from the first and the last), against results computed
// locally. Run under each algorithm (IPC_COLL_<OP>, IPC_SHM_COLL=0, IPC_COLL_HIER) by
// the tests; the result must not depend on the choice.
#include <ipc/ipc.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "check.hpp"

namespace {

int g_me = 0;
#define CHECK(cond, ...) IT_CHECK(g_me, cond, __VA_ARGS__)

// Rank r's element i: small enough that sums over 8 ranks stay exact.
std::int32_t value(int r, std::size_t i) { return static_cast<std::int32_t>((r * 131 + i * 7) % 1000); }
std::vector<std::int32_t> data(int r, std::size_t n) {
  std::vector<std::int32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = value(r, i);
  return v;
}

void run(const ipc::Communicator& c, std::size_t n, bool all_roots) {
  int p = c.size(), me = c.rank();
  auto mine = data(me, n);
  std::vector<int> roots;
  for (int r = 0; r < p; ++r)
    if (all_roots || r == 0 || r == p - 1) roots.push_back(r);

  c.barrier();
  for (int root : roots) {  // bcast, reduce, gather, scatter
    auto b = me == root ? data(root, n) : std::vector<std::int32_t>(n, -1);
    c.bcast(std::span<std::int32_t>(b), root);
    CHECK(b == data(root, n), "bcast of %zu from %d", n, root);
    auto red = mine;
    c.reduce_inplace(red, root, ipc::op::max{});
    if (me == root)
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t m = 0;
        for (int q = 0; q < p; ++q) m = std::max(m, value(q, i));
        CHECK(red[i] == m, "reduce max of %zu to %d at %zu: %d, expected %d", n, root, i, red[i], m);
      }
    std::vector<std::int32_t> g(me == root ? n * static_cast<std::size_t>(p) : 0);
    c.gather(mine, g, root);
    if (me == root)
      for (int q = 0; q < p; ++q)
        for (std::size_t i = 0; i < n; ++i)
          CHECK(g[static_cast<std::size_t>(q) * n + i] == value(q, i), "gather of %zu to %d", n, root);
    std::vector<std::int32_t> all;
    if (me == root)
      for (int q = 0; q < p; ++q) {
        auto d = data(q + 1000, n);
        all.insert(all.end(), d.begin(), d.end());
      }
    std::vector<std::int32_t> part(n);
    c.scatter(all, part, root);
    CHECK(part == data(me + 1000, n), "scatter of %zu from %d", n, root);
  }
  // allreduce (sum; vectors and in place), allgather, alltoall, reduce_scatter, scan
  auto sum = c.allreduce(mine);
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t s = 0;
    for (int q = 0; q < p; ++q) s += value(q, i);
    CHECK(sum[i] == s, "allreduce of %zu at %zu: %d, expected %d", n, i, sum[i], s);
  }
  std::vector<std::int32_t> ag(n * static_cast<std::size_t>(p));
  c.allgather(mine, ag);
  for (int q = 0; q < p; ++q)
    for (std::size_t i = 0; i < n; ++i)
      CHECK(ag[static_cast<std::size_t>(q) * n + i] == value(q, i), "allgather of %zu: block %d at %zu", n, q, i);
  std::vector<std::int32_t> a2a_in(n * static_cast<std::size_t>(p)), a2a_out(a2a_in.size());
  for (int q = 0; q < p; ++q)
    for (std::size_t i = 0; i < n; ++i) a2a_in[static_cast<std::size_t>(q) * n + i] = value(me * 10 + q, i);
  c.alltoall(a2a_in, a2a_out);
  for (int q = 0; q < p; ++q)
    for (std::size_t i = 0; i < n; ++i)
      CHECK(a2a_out[static_cast<std::size_t>(q) * n + i] == value(q * 10 + me, i), "alltoall of %zu from %d", n, q);
  std::vector<std::int32_t> rs(n);
  std::vector<std::int32_t> rs_in(n * static_cast<std::size_t>(p));
  for (std::size_t i = 0; i < rs_in.size(); ++i) rs_in[i] = value(me, i);
  c.reduce_scatter_block(rs_in, rs);
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t s = 0;
    for (int q = 0; q < p; ++q) s += value(q, static_cast<std::size_t>(me) * n + i);
    CHECK(rs[i] == s, "reduce_scatter_block of %zu at %zu", n, i);
  }
  auto sc = mine;
  c.scan_inplace(sc);
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t s = 0;
    for (int q = 0; q <= me; ++q) s += value(q, i);
    CHECK(sc[i] == s, "scan of %zu at %zu", n, i);
  }
  // allgatherv and alltoallv with lengths n / (q + 1)
  auto len = [&](int q) { return n / static_cast<std::size_t>(q + 1); };
  auto agv = c.allgatherv(data(me, len(me)));
  std::size_t at = 0;
  for (int q = 0; q < p; ++q)
    for (std::size_t i = 0; i < len(q); ++i, ++at) CHECK(agv[at] == value(q, i), "allgatherv of %zu", n);
  CHECK(at == agv.size(), "allgatherv of %zu: %zu elements", n, agv.size());
}

}  // namespace

int main() {
  ipc::Runtime rt;
  const auto& w = rt.world();
  g_me = w.rank();
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1024}}) run(w, n, true);
  run(w, 1 << 20, false);
  // A communicator of every other rank, which spans hosts differently.
  auto half = w.split(w.rank() % 2, -w.rank());
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1024}}) run(half, n, true);
  w.barrier();
  if (g_me == 0) std::printf("coll_matrix: %d ranks ok\n", w.size());
  return 0;
}
