// The rest of the collective set, checked against values every rank can compute:
// scatter, gatherv, scatterv, allgatherv, alltoallv (blocks of rank-dependent lengths,
// zero included), reduce_scatter(_block), scan, exscan; the logical, bitwise and
// min/max-loc reductions; user reductions over serialized values; and the
// non-blocking forms, several in flight, mixed with blocking ones, on two
// communicators started in opposite orders, and completing while the rank does not
// call into the library. Argument: the part to run ("all" by default).
#include <ipc/ipc.hpp>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <chrono>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

int g_me = 0;
#define CHECK(cond, ...) IT_CHECK(g_me, cond, __VA_ARGS__)

// Rank q's block in the v-collectives: (q % 3) elements (so some are empty), each
// naming its rank and position.
std::size_t len(int q) { return static_cast<std::size_t>(q % 3); }
int item(int q, std::size_t i) { return q * 1000 + static_cast<int>(i); }
std::vector<int> block(int q) {
  std::vector<int> b(len(q));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = item(q, i);
  return b;
}

void blocks(const ipc::Communicator& c) {
  int n = c.size(), me = c.rank();
  for (int root = 0; root < n; ++root) {
    // scatter, both forms
    std::vector<int> all;
    if (me == root)
      for (int q = 0; q < n; ++q) all.insert(all.end(), {q, -q});
    std::vector<int> two(2);
    c.scatter(all, two, root);
    CHECK(two[0] == me && two[1] == -me, "scatter from %d: got %d %d", root, two[0], two[1]);
    std::vector<double> vals;
    if (me == root)
      for (int q = 0; q < n; ++q) vals.push_back(q + 0.5);
    double v = c.scatter(vals, root);
    CHECK(v == me + 0.5, "scatter of values from %d: got %g", root, v);
    // Blocks of 8 KiB to 80 KB (the node group's slots or messages, by size and ranks),
    // twice in a row from the same buffers.
    for (std::size_t ints : {std::size_t{2048}, std::size_t{4096}, std::size_t{20000}}) {
      std::vector<int> big;
      if (me == root)
        for (int q = 0; q < n; ++q)
          for (std::size_t i = 0; i < ints; ++i) big.push_back(q * 7 + static_cast<int>(i % 1009));
      std::vector<int> mine(ints);
      for (int rep = 0; rep < 2; ++rep) {
        std::fill(mine.begin(), mine.end(), -1);
        c.scatter(big, mine, root);
        for (std::size_t i = 0; i < ints; ++i)
          if (mine[i] != me * 7 + static_cast<int>(i % 1009)) {
            CHECK(false, "scatter of %zu ints from %d: element %zu is %d", ints, root, i, mine[i]);
          }
      }
    }

    // gatherv, both forms
    std::vector<std::size_t> counts(static_cast<std::size_t>(n));
    std::vector<int> expect;
    for (int q = 0; q < n; ++q) {
      counts[static_cast<std::size_t>(q)] = len(q);
      auto b = block(q);
      expect.insert(expect.end(), b.begin(), b.end());
    }
    std::vector<std::size_t> got_counts;
    auto g = c.gatherv(block(me), root, &got_counts);
    if (me == root) {
      CHECK(g == expect, "gatherv to %d: %zu elements, expected %zu", root, g.size(), expect.size());
      CHECK(got_counts == counts, "gatherv to %d: counts differ", root);
    } else {
      CHECK(g.empty(), "gatherv to %d: a non-root got %zu elements", root, g.size());
    }
    std::vector<int> out(me == root ? expect.size() : 0);
    c.gatherv(block(me), out, counts, root);
    if (me == root) CHECK(out == expect, "gatherv (given counts) to %d", root);

    // scatterv, both forms
    std::vector<int> mine(len(me));
    c.scatterv(me == root ? expect : std::vector<int>{}, counts, mine, root);
    CHECK(mine == block(me), "scatterv from %d: got %zu elements", root, mine.size());
    auto mine2 = c.scatterv(me == root ? expect : std::vector<int>{}, counts, root);
    CHECK(mine2 == block(me), "scatterv (returned) from %d: got %zu elements", root, mine2.size());
  }

  // allgatherv, both forms
  std::vector<std::size_t> counts;
  std::vector<int> expect;
  for (int q = 0; q < n; ++q) {
    counts.push_back(len(q));
    auto b = block(q);
    expect.insert(expect.end(), b.begin(), b.end());
  }
  std::vector<std::size_t> got_counts;
  CHECK(c.allgatherv(block(me), &got_counts) == expect, "allgatherv");
  CHECK(got_counts == counts, "allgatherv: counts");
  std::vector<int> out(expect.size());
  c.allgatherv(block(me), out, counts);
  CHECK(out == expect, "allgatherv (given counts)");

  // alltoallv: rank q sends (q + p) % 3 elements to rank p, each naming (q, p, i).
  auto amount = [](int from, int to) { return static_cast<std::size_t>((from + to) % 3); };
  std::vector<std::size_t> send_counts, recv_counts;
  std::vector<int> send, want;
  for (int p = 0; p < n; ++p) {
    send_counts.push_back(amount(me, p));
    for (std::size_t i = 0; i < amount(me, p); ++i) send.push_back(me * 10000 + p * 100 + static_cast<int>(i));
    recv_counts.push_back(amount(p, me));
    for (std::size_t i = 0; i < amount(p, me); ++i) want.push_back(p * 10000 + me * 100 + static_cast<int>(i));
  }
  std::vector<std::size_t> rc;
  CHECK(c.alltoallv(send, send_counts, &rc) == want, "alltoallv");
  CHECK(rc == recv_counts, "alltoallv: receive counts");
  std::vector<int> recv(want.size());
  c.alltoallv(send, send_counts, recv, recv_counts);
  CHECK(recv == want, "alltoallv (given counts)");

  // reduce_scatter_block: rank q contributes q + i at position i; block r has 3 elements.
  std::vector<long> in(3 * static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = me + static_cast<long>(i);
  std::vector<long> mine(3);
  c.reduce_scatter_block(in, mine);
  long ranks_sum = static_cast<long>(n) * (n - 1) / 2;
  for (std::size_t i = 0; i < 3; ++i) {
    long pos = static_cast<long>(3 * me + i);
    CHECK(mine[i] == ranks_sum + n * pos, "reduce_scatter_block[%zu]: %ld, expected %ld", i, mine[i],
          ranks_sum + n * pos);
  }
  // reduce_scatter with blocks of q % 3 elements, by max.
  std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
  std::vector<int> vin(total);
  for (std::size_t i = 0; i < total; ++i) vin[i] = (me * 7 + static_cast<int>(i)) % 11;
  std::vector<int> vout(len(me));
  c.reduce_scatter(vin, vout, counts, ipc::op::max{});
  std::size_t first = 0;
  for (int q = 0; q < me; ++q) first += len(q);
  for (std::size_t i = 0; i < vout.size(); ++i) {
    int best = 0;
    for (int q = 0; q < n; ++q) best = std::max(best, (q * 7 + static_cast<int>(first + i)) % 11);
    CHECK(vout[i] == best, "reduce_scatter[%zu]: %d, expected %d", i, vout[i], best);
  }

  // Mismatched counts are the caller's error, named.
  bool refused = false;
  try {
    c.allgatherv(block(me), out, std::vector<std::size_t>(static_cast<std::size_t>(n) + 1, 0));
  } catch (const ipc::UsageError& e) {
    refused = std::strstr(e.what(), "allgatherv") && std::strstr(e.what(), "counts");
  }
  CHECK(refused, "allgatherv with one count too many was not refused by name");
}

void scans(const ipc::Communicator& c) {
  int n = c.size(), me = c.rank();
  long s = c.scan(static_cast<long>(me + 1));
  CHECK(s == static_cast<long>(me + 1) * (me + 2) / 2, "scan: %ld", s);
  long e = c.exscan(static_cast<long>(me + 1));
  CHECK(e == static_cast<long>(me) * (me + 1) / 2, "exscan: %ld", e);
  std::vector<int> v{me, 1, -me};
  c.scan_inplace(v, ipc::op::max{});
  CHECK(v[0] == me && v[1] == 1 && v[2] == 0, "scan_inplace max: %d %d %d", v[0], v[1], v[2]);
  std::vector<long> w{1, me};
  c.exscan_inplace(w);
  if (me > 0) CHECK(w[0] == me && w[1] == static_cast<long>(me) * (me - 1) / 2, "exscan_inplace: %ld %ld", w[0], w[1]);
  else CHECK(w[0] == 1 && w[1] == 0, "exscan_inplace on rank 0 changed its values");
  std::vector<double> big(100000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i % 7);
  c.scan_inplace(big);
  for (std::size_t i = 0; i < big.size(); i += 997)
    CHECK(big[i] == static_cast<double>((i % 7) * (me + 1)), "scan of 100000 doubles at %zu: %g", i, big[i]);
  (void)n;
}

struct Histogram {
  std::map<std::string, long> counts;
  template <class A>
  void serialize(A& a) {
    a(counts);
  }
};

void reductions(const ipc::Communicator& c) {
  int n = c.size(), me = c.rank();
  CHECK(c.allreduce(me % 2 == 0 ? 1 : 0, ipc::op::land{}) == (n == 1 ? 1 : 0), "land");
  CHECK(c.allreduce(me == n - 1 ? 1 : 0, ipc::op::lor{}) == 1, "lor");
  CHECK(c.allreduce(1, ipc::op::lxor{}) == n % 2, "lxor");
  unsigned bits = 1u << (me % 32);
  unsigned all = 0;
  for (int q = 0; q < n; ++q) all |= 1u << (q % 32);
  CHECK(c.allreduce(bits, ipc::op::bor{}) == all, "bor");
  CHECK(c.allreduce(~0u ^ bits, ipc::op::band{}) == ~all, "band");
  unsigned x = 0;
  for (int q = 0; q < n; ++q) x ^= 1u << (q % 32);
  CHECK(c.allreduce(bits, ipc::op::bxor{}) == x, "bxor");
  // min/max-loc: value (me * 3) % n; ties go to the lowest rank.
  double val = static_cast<double>((me * 3) % n);
  auto lo = c.allreduce(ipc::Loc<double>{val, me}, ipc::op::minloc{});
  auto hi = c.allreduce(ipc::Loc<double>{val, me}, ipc::op::maxloc{});
  double lo_v = 1e9, hi_v = -1;
  int lo_r = -1, hi_r = -1;
  for (int q = 0; q < n; ++q) {
    double v = static_cast<double>((q * 3) % n);
    if (v < lo_v) lo_v = v, lo_r = q;
    if (v > hi_v) hi_v = v, hi_r = q;
  }
  CHECK(lo.value == lo_v && lo.rank == lo_r, "minloc: (%g, %d), expected (%g, %d)", lo.value, lo.rank, lo_v, lo_r);
  CHECK(hi.value == hi_v && hi.rank == hi_r, "maxloc: (%g, %d), expected (%g, %d)", hi.value, hi.rank, hi_v, hi_r);
  auto at0 = c.reduce(ipc::Loc<int>{-me, me}, 0, ipc::op::minloc{});
  if (me == 0) CHECK(at0.value == -(n - 1) && at0.rank == n - 1, "reduce minloc");

  // A user's reduction of a struct with a map, with a callable that keeps a count.
  Histogram h;
  h.counts["rank" + std::to_string(me)] = 1;
  h.counts["all"] = me;
  int merges = 0;
  auto merge = [&merges](const Histogram& a, const Histogram& b) {
    ++merges;
    Histogram r = a;
    for (auto& [k, v] : b.counts) r.counts[k] += v;
    return r;
  };
  Histogram sum = c.allreduce(h, merge);
  CHECK(sum.counts.size() == static_cast<std::size_t>(n) + 1, "allreduce of a map: %zu keys", sum.counts.size());
  CHECK(sum.counts["all"] == static_cast<long>(n) * (n - 1) / 2, "allreduce of a map: all = %ld", sum.counts["all"]);
  for (int q = 0; q < n; ++q) CHECK(sum.counts["rank" + std::to_string(q)] == 1, "allreduce of a map: rank%d", q);
  int all_merges = c.allreduce(merges);
  CHECK(all_merges == n - 1, "a serialized allreduce merged %d times, expected %d", all_merges, n - 1);
  Histogram at_root = c.reduce(h, n - 1, merge);
  if (me == n - 1) CHECK(at_root.counts["all"] == static_cast<long>(n) * (n - 1) / 2, "reduce of a map on the root");
  else CHECK(at_root.counts.empty(), "reduce of a map: a non-root got a value");
  // Element by element over vectors of strings.
  std::vector<std::string> words{std::string(1, static_cast<char>('a' + me % 26)), "x"};
  auto longest = c.allreduce(words, [](const std::string& a, const std::string& b) { return a + b; });
  CHECK(longest.size() == 2 && longest[0].size() == static_cast<std::size_t>(n) && longest[1] == std::string(n, 'x'),
        "allreduce of strings element by element: \"%s\"", longest.empty() ? "" : longest[0].c_str());

  // reduce_inplace leaves the non-roots' values alone.
  std::vector<int> r{me, 1};
  c.reduce_inplace(r, 0);
  if (me == 0) CHECK(r[0] == n * (n - 1) / 2 && r[1] == n, "reduce_inplace on the root");
  else CHECK(r[0] == me && r[1] == 1, "reduce_inplace changed a non-root's values");
}

void nonblocking(const ipc::Communicator& c, int round) {
  int n = c.size(), me = c.rank();
  // Several in flight at once, a blocking collective among them.
  std::vector<ipc::Request> rs;
  rs.push_back(c.ibarrier());
  std::vector<int> data;
  if (me == 0) data = {1, 2, 3, 4, 5};
  rs.push_back(c.ibcast(data, 0));
  long sum = -1;
  rs.push_back(c.iallreduce(static_cast<long>(me), sum));
  int red = -1;
  rs.push_back(c.ireduce(me, red, n - 1, ipc::op::max{}));
  std::vector<int> ranks;
  rs.push_back(c.iallgather(me, ranks));
  std::vector<int> send(static_cast<std::size_t>(n)), recv(static_cast<std::size_t>(n));
  for (int q = 0; q < n; ++q) send[static_cast<std::size_t>(q)] = me * 100 + q;
  rs.push_back(c.ialltoall(send, recv));
  std::vector<double> in_place(1000, 1.0);
  rs.push_back(c.iallreduce_inplace(in_place));
  std::vector<int> at_root{me, 2};
  rs.push_back(c.ireduce_inplace(at_root, 0));
  int blocking = c.allreduce(1);  // between start and wait
  CHECK(blocking == n, "a blocking allreduce among non-blocking ones: %d", blocking);
  // Point-to-point traffic on the same communicator while they are in flight: a ring
  // of 200 messages of 1 to 100,000 bytes.
  int right = (me + 1) % n, left = (me + n - 1) % n;
  for (int k = 0; k < 200; ++k) {
    std::vector<char> out(static_cast<std::size_t>(1 + (k * 7919) % 100000), static_cast<char>(k + me)), in;
    c.sendrecv(out, right, ipc::Tag{7}, in, left, ipc::Tag{7});
    CHECK(in.size() == out.size() && (in.empty() || in[0] == static_cast<char>(k + left)), "p2p message %d among "
          "non-blocking collectives: %zu bytes", k, in.size());
  }
  ipc::wait_all(rs);
  CHECK((data == std::vector<int>{1, 2, 3, 4, 5}), "ibcast: %zu elements", data.size());
  CHECK(sum == static_cast<long>(n) * (n - 1) / 2, "iallreduce: %ld", sum);
  if (me == n - 1) CHECK(red == n - 1, "ireduce on the root: %d", red);
  for (int q = 0; q < n; ++q) {
    CHECK(ranks[static_cast<std::size_t>(q)] == q, "iallgather[%d] = %d", q, ranks[static_cast<std::size_t>(q)]);
    CHECK(recv[static_cast<std::size_t>(q)] == q * 100 + me, "ialltoall[%d] = %d", q, recv[static_cast<std::size_t>(q)]);
  }
  for (double d : in_place) CHECK(d == n, "iallreduce_inplace: %g", d);
  if (me == 0) CHECK(at_root[0] == n * (n - 1) / 2 && at_root[1] == 2 * n, "ireduce_inplace on the root");
  else CHECK(at_root[0] == me, "ireduce_inplace changed a non-root's values");

  // Two communicators, started in opposite orders on even and odd ranks.
  ipc::Communicator a = c.dup(), b = c.dup();
  long x = -1, y = -1;
  ipc::Request ra, rb;
  if (me % 2 == 0) {
    ra = a.iallreduce(1L, x);
    rb = b.iallreduce(2L, y);
  } else {
    rb = b.iallreduce(2L, y);
    ra = a.iallreduce(1L, x);
  }
  rb.wait();
  ra.wait();
  CHECK(x == n && y == 2 * n, "two communicators in opposite orders: %ld %ld", x, y);

  // Completion in the background: rank 0 starts a barrier that the others enter only
  // after its request is there, and watches done() without calling into the library.
  ipc::Request bar;
  if (me == 0) bar = c.ibarrier();
  c.barrier();  // rank 0's ibarrier has started
  if (me != 0) bar = c.ibarrier();
  if (me == 0) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!bar.done() && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(bar.done(), "an ibarrier did not complete while its rank stayed out of the library");
  }
  bar.wait();

  // test() until done, on a split communicator.
  ipc::Communicator half = c.split(me % 2);
  long hs = 0;
  ipc::Request t = half.iallreduce(1L, hs);
  while (!t.test()) {
  }
  CHECK(hs == half.size(), "iallreduce on a split communicator: %ld of %d", hs, half.size());

  // Bad arguments are refused at the start.
  bool refused = false;
  try {
    int v = 0;
    c.ibcast(v, n);
  } catch (const ipc::UsageError&) {
    refused = true;
  }
  CHECK(refused, "ibcast from rank %d (of %d) was not refused", n, n);

  // Left unwaited: the runtime completes it before the job ends.
  static long dangling[2];
  c.iallreduce(1L, dangling[round]);
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& w = rt.world();
  g_me = w.rank();
  std::string part = argc > 1 ? argv[1] : "all";
  for (int round = 0; round < 2; ++round) {
    // The world, then a communicator of the ranks in reverse order.
    ipc::Communicator c = round == 0 ? w : w.split(0, w.size() - w.rank());
    if (part == "all" || part == "blocks") blocks(c);
    if (part == "all" || part == "scans") scans(c);
    if (part == "all" || part == "reductions") reductions(c);
    if (part == "all" || part == "nonblocking") nonblocking(c, round);
  }
  if (g_me == 0) std::printf("coll_more %s: %d ranks ok\n", part.c_str(), w.size());
  return 0;
}
