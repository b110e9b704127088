// Random sequences of collectives with random roots and sizes (the same sequence on
// every rank, from a seed), every result checked: calls of different kinds follow
// each other closely, so buffers reused from one call to the next must never be
// overwritten while a slower rank still reads them. Sizes straddle the node group's
// inline, piece, slot and chunk limits (run it with small IPC_SHM_COLL slots too).
//   it_coll_mix [iterations] [seed]
#include <ipc/ipc.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <span>
#include <vector>

#include "check.hpp"

namespace {

std::uint32_t value(int rank, int iter, std::size_t i) {
  return static_cast<std::uint32_t>(rank * 7919 + iter * 104729 + static_cast<int>(i) * 31);
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank(), n = c.size();
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 600;
  std::mt19937 rng(argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1u);
  const std::size_t sizes[] = {0, 1, 2, 5, 13, 14, 15, 64, 100, 256, 257, 1000, 4097, 20000, 70001};
  for (int it = 0; it < iterations; ++it) {
    const int kind = static_cast<int>(rng() % 8);
    const std::size_t count = sizes[rng() % std::size(sizes)];
    const int root = static_cast<int>(rng() % static_cast<unsigned>(n));
    const int slow_rank = static_cast<int>(rng() % static_cast<unsigned>(n));  // draws the same on every rank
    const bool pause = rng() % 8 == 0;
    const bool slow = slow_rank == me && pause;
    if (slow) std::this_thread::yield();
    std::vector<std::uint32_t> mine(count);
    for (std::size_t i = 0; i < count; ++i) mine[i] = value(me, it, i);
    switch (kind) {
      case 0: {
        c.barrier();
        break;
      }
      case 1: {
        std::vector<std::uint32_t> v = me == root ? mine : std::vector<std::uint32_t>(count);
        c.bcast(std::span<std::uint32_t>(v), root);
        for (std::size_t i = 0; i < count; ++i)
          IT_CHECK(me, v[i] == value(root, it, i), "iteration %d: bcast of %zu from %d, element %zu", it, count, root, i);
        break;
      }
      case 2: {
        auto v = mine;
        c.allreduce_inplace(std::span<std::uint32_t>(v));
        for (std::size_t i = 0; i < count; ++i) {
          std::uint32_t want = 0;
          for (int q = 0; q < n; ++q) want += value(q, it, i);
          IT_CHECK(me, v[i] == want, "iteration %d: allreduce of %zu, element %zu", it, count, i);
        }
        break;
      }
      case 3: {
        if (count == 0) break;
        auto v = c.reduce(mine, root);
        if (me != root) break;
        for (std::size_t i = 0; i < count; ++i) {
          std::uint32_t want = 0;
          for (int q = 0; q < n; ++q) want += value(q, it, i);
          IT_CHECK(me, v[i] == want, "iteration %d: reduce of %zu to %d, element %zu", it, count, root, i);
        }
        break;
      }
      case 4: {
        std::vector<std::uint32_t> all(count * static_cast<std::size_t>(n));
        c.allgather(std::span<const std::uint32_t>(mine), std::span<std::uint32_t>(all));
        for (int q = 0; q < n; ++q)
          for (std::size_t i = 0; i < count; i += 1 + count / 50)
            IT_CHECK(me, all[q * count + i] == value(q, it, i), "iteration %d: allgather of %zu, rank %d", it, count, q);
        break;
      }
      case 5: {
        std::vector<std::uint32_t> all(me == root ? count * static_cast<std::size_t>(n) : 0);
        c.gather(std::span<const std::uint32_t>(mine), std::span<std::uint32_t>(all), root);
        for (int q = 0; me == root && q < n; ++q)
          for (std::size_t i = 0; i < count; i += 1 + count / 50)
            IT_CHECK(me, all[q * count + i] == value(q, it, i), "iteration %d: gather of %zu to %d", it, count, root);
        break;
      }
      case 6: {
        // Block b of rank q is value(q, it, b * count + i).
        std::vector<std::uint32_t> out(count * static_cast<std::size_t>(n)), in(out.size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = value(me, it, i);
        c.alltoall(std::span<const std::uint32_t>(out), std::span<std::uint32_t>(in));
        for (int q = 0; q < n; ++q)
          for (std::size_t i = 0; i < count; i += 1 + count / 50)
            IT_CHECK(me, in[q * count + i] == value(q, it, static_cast<std::size_t>(me) * count + i),
                     "iteration %d: alltoall of %zu from %d", it, count, q);
        break;
      }
      case 7: {
        // Block b of the root's is value(root, it, b * count + i).
        std::vector<std::uint32_t> all(me == root ? count * static_cast<std::size_t>(n) : 0), block(count);
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = value(me, it, i);
        c.scatter(std::span<const std::uint32_t>(all), std::span<std::uint32_t>(block), root);
        for (std::size_t i = 0; i < count; ++i)
          IT_CHECK(me, block[i] == value(root, it, static_cast<std::size_t>(me) * count + i),
                   "iteration %d: scatter of %zu from %d, element %zu", it, count, root, i);
        break;
      }
    }
  }
  return 0;
}
