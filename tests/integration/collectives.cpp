// The collectives on every number of ranks: barrier (checked through files), bcast of
// every value kind from every root, allreduce of scalars and vectors around the
// algorithm switch (bitwise equal on every rank), reduce, allgather, gather, alltoall.
#include <ipc/ipc.hpp>
#include <unistd.h>

#include <sys/stat.h>

#include <array>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();

  // Barrier: nobody leaves before everyone has arrived (each leaves a file first).
  std::string dir = std::string("/tmp/ipc-it-barrier-") + rt.job();
  if (me == 0) ::mkdir(dir.c_str(), 0700);
  c.barrier();
  for (int round = 0; round < 3; ++round) {
    if ((me + round) % n == 0) ::usleep(20000);  // someone is late
    std::ofstream(dir + "/" + std::to_string(round) + "-" + std::to_string(me)) << me;
    c.barrier();
    for (int q = 0; q < n; ++q)
      IT_CHECK(me, ::access((dir + "/" + std::to_string(round) + "-" + std::to_string(q)).c_str(), F_OK) == 0,
               "round %d: left the barrier before rank %d arrived", round, q);
  }
  c.barrier();
  if (me == 0) std::system(("rm -rf " + dir).c_str());

  // Bcast from every root.
  for (int root = 0; root < n; ++root) {
    long v = me == root ? 1000 + root : -1;
    c.bcast(v, root);
    IT_CHECK(me, v == 1000 + root, "bcast long from %d: %ld", root, v);
    std::vector<double> vec;
    if (me == root) vec.assign(100000 + root, 0.5 * root);
    c.bcast(vec, root);
    IT_CHECK(me, vec.size() == 100000u + root && vec.back() == 0.5 * root, "bcast vector from %d", root);
    std::map<std::string, int> m;
    if (me == root) m = {{"root", root}, {"n", n}};
    c.bcast(m, root);
    IT_CHECK(me, m.size() == 2 && m["root"] == root, "bcast map from %d", root);
  }

  // Allreduce of scalars.
  IT_CHECK(me, c.allreduce(me) == n * (n - 1) / 2, "sum of ranks");
  IT_CHECK(me, c.allreduce(me, ipc::op::max{}) == n - 1, "max");
  IT_CHECK(me, c.allreduce(me + 5, ipc::op::min{}) == 5, "min");
  auto bor = [](std::uint32_t a, std::uint32_t b) { return a | b; };
  IT_CHECK(me, c.allreduce(std::uint32_t{1} << me, bor) == (std::uint32_t{1} << n) - 1, "custom op");

  // Elements larger than the node group's slots (with IPC_SHM_COLL=256) go over
  // messages: the same result.
  struct Big {
    double v[64];
  };
  Big big{};
  for (int i = 0; i < 64; ++i) big.v[i] = me + i;
  auto add_big = [](const Big& x, const Big& y) {
    Big z{};
    for (int i = 0; i < 64; ++i) z.v[i] = x.v[i] + y.v[i];
    return z;
  };
  Big big_sum = c.allreduce(big, add_big);
  for (int i = 0; i < 64; ++i) IT_CHECK(me, big_sum.v[i] == n * (n - 1) / 2 + n * i, "large elements, at %d", i);
  long big_root = c.reduce(static_cast<long>(me), n - 1);
  if (me == n - 1) IT_CHECK(me, big_root == n * (n - 1) / 2, "reduce to the last rank");

  // Vectors across the algorithm switch, with values whose float sums depend on order:
  // every rank must hold bitwise the same result.
  for (std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{1000}, std::size_t{2048},
                            std::size_t{2049}, std::size_t{100003}}) {
    std::vector<double> v(count);
    for (std::size_t i = 0; i < count; ++i) v[i] = std::sin(1.0 * i + me) * std::pow(10.0, me % 7);
    auto sum = c.allreduce(v);
    std::vector<std::int64_t> ints(count);
    for (std::size_t i = 0; i < count; ++i) ints[i] = static_cast<std::int64_t>(i) * (me + 1);
    auto isum = c.allreduce(ints);
    for (std::size_t i = 0; i < count; i += 1 + count / 17)
      IT_CHECK(me, isum[i] == static_cast<std::int64_t>(i) * n * (n + 1) / 2, "count %zu: int sum at %zu", count, i);
    // Compare with rank 0's result, bit for bit.
    auto ref = sum;
    c.bcast(ref, 0);
    IT_CHECK(me, std::memcmp(ref.data(), sum.data(), count * sizeof(double)) == 0,
             "count %zu: the double sums differ between ranks", count);
    double expect0 = 0;
    for (int q = 0; q < n; ++q) expect0 += std::sin(0.0 + q) * std::pow(10.0, q % 7);
    IT_CHECK(me, std::fabs(sum[0] - expect0) <= 1e-9 * std::fabs(expect0) + 1e-12, "count %zu: sum[0]", count);
  }

  // Reduce to every root; gathers; all-to-all.
  for (int root = 0; root < n; ++root) {
    long r = c.reduce(static_cast<long>(me + 1), root);
    if (me == root) IT_CHECK(me, r == 1L * n * (n + 1) / 2, "reduce to %d: %ld", root, r);
    if (me != root) IT_CHECK(me, r == 0, "reduce to %d: rank %d got %ld, not T{}", root, me, r);
    auto g = c.gather(me * 3, root);
    IT_CHECK(me, me == root ? g.size() == static_cast<std::size_t>(n) : g.empty(), "gather size");
    for (int q = 0; me == root && q < n; ++q) IT_CHECK(me, g[q] == q * 3, "gather from %d", q);
  }
  // Containers where blocks are taken: vectors, arrays, spans of non-const elements.
  {
    std::vector<int> in{me, -me}, out(2 * static_cast<std::size_t>(n));
    c.allgather(in, out);
    for (int q = 0; q < n; ++q) IT_CHECK(me, out[2 * q] == q && out[2 * q + 1] == -q, "allgather of vectors, %d", q);
    std::span<int> in_span(in);  // not a span of const
    std::vector<int> out2(out.size());
    c.allgather(in_span, std::span<int>(out2));
    IT_CHECK(me, out2 == out, "allgather of spans");
    std::vector<long> acc(5, me);
    c.allreduce_inplace(acc);
    for (long x : acc) IT_CHECK(me, x == 1L * n * (n - 1) / 2, "allreduce_inplace of a vector");
    std::array<int, 3> arr{1, 2, 3};
    c.allreduce_inplace(arr, ipc::op::max{});
    IT_CHECK(me, arr[2] == 3, "allreduce_inplace of an array");
    std::vector<int> block(static_cast<std::size_t>(n), me), back(static_cast<std::size_t>(n));
    c.alltoall(block, back);
    for (int q = 0; q < n; ++q) IT_CHECK(me, back[q] == q, "alltoall of vectors from %d", q);
    std::vector<int> gathered(me == 0 ? 2 * static_cast<std::size_t>(n) : 0);
    c.gather(in, gathered, 0);
    if (me == 0) IT_CHECK(me, gathered == out, "gather of vectors");
  }
  auto all = c.allgather(me * 7 + 1);
  for (int q = 0; q < n; ++q) IT_CHECK(me, all[q] == q * 7 + 1, "allgather from %d", q);
  std::vector<char> blocks(1000 * n), got(1000 * n);
  for (int q = 0; q < n; ++q)
    for (int i = 0; i < 1000; ++i) blocks[q * 1000 + i] = static_cast<char>(me * 31 + q + i);
  c.allgather(std::span<const char>(blocks.data() + me * 1000, 1000), std::span<char>(got));
  for (int q = 0; q < n; ++q) IT_CHECK(me, got[q * 1000 + 5] == static_cast<char>(q * 31 + q + 5), "block allgather");
  std::vector<int> to(n);
  for (int q = 0; q < n; ++q) to[q] = me * 100 + q;
  auto from = c.alltoall(to);
  for (int q = 0; q < n; ++q) IT_CHECK(me, from[q] == q * 100 + me, "alltoall from %d: %d", q, from[q]);
  c.alltoall(std::span<const char>(blocks), std::span<char>(got));
  for (int q = 0; q < n; ++q)
    IT_CHECK(me, got[q * 1000 + 7] == static_cast<char>(q * 31 + me + 7), "block alltoall from %d", q);

  // min/max where operand order matters (NaN): still the same bits everywhere.
  double odd = me == 1 ? std::nan("") : 1.0 * me;
  double mn = c.allreduce(odd, ipc::op::min{}), ref_mn = mn;
  c.bcast(ref_mn, 0);
  IT_CHECK(me, std::memcmp(&mn, &ref_mn, sizeof mn) == 0, "min with a NaN differs between ranks");

  // Bad arguments are usage errors.
  bool bad_sizes = false;
  try {
    std::vector<char> small(n), big(2 * n);
    c.alltoall(std::span<const char>(small), std::span<char>(big));
  } catch (const ipc::UsageError&) {
    bad_sizes = true;
  }
  IT_CHECK(me, bad_sizes, "alltoall with mismatched sizes");
  bool usage = false;
  try {
    c.bcast(usage, n);
  } catch (const ipc::UsageError&) {
    usage = true;
  }
  IT_CHECK(me, usage, "bcast from a root outside the job");
  return 0;
}
