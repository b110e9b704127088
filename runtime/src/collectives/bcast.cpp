// Broadcast: binomial tree rooted at `root` (ceil(log2 p) rounds; each rank receives
// once and forwards to the subtrees below it); for large data, scatter + allgather.
#include <algorithm>
#include <vector>

#include "collectives/hierarchy.hpp"
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"

namespace ipc::detail {
namespace {

// Large data: the root deals one block to each rank (sending the data once), then a
// ring allgather completes every rank's copy ((p-1)/p of the data in, the same out).
void scatter_allgather(const CollContext& c, std::byte* data, std::size_t bytes, int root) {
  int p = c.size, r = c.rank;
  std::vector<std::size_t> counts(static_cast<std::size_t>(p)), displs(static_cast<std::size_t>(p));
  for (int q = 0; q < p; ++q) {
    std::size_t first = bytes / p * q + std::min<std::size_t>(q, bytes % p);
    std::size_t next = bytes / p * (q + 1) + std::min<std::size_t>(q + 1, bytes % p);
    displs[q] = first;
    counts[q] = next - first;
  }
  if (r == root) {
    std::vector<Move> sends;
    for (int q = 0; q < p; ++q)
      if (q != root) sends.push_back({q, data + displs[q], counts[q]});
    coll_post_all(c, nullptr, 0, sends.data(), p - 1, kBcastScatter);
  } else {
    coll_recv(c, data + displs[r], counts[r], root, kBcastScatter);
  }
  int right = (r + 1) % p, left = (r - 1 + p) % p;
  for (int s = 0; s < p - 1; ++s) {
    int send_b = (r - s + p) % p, recv_b = (r - s - 1 + 2 * p) % p;
    coll_sendrecv(c, data + displs[send_b], counts[send_b], right, data + displs[recv_b], counts[recv_b], left, kBcast);
  }
}

}  // namespace

void coll_bcast(const CollContext& c, void* data, std::size_t bytes, int root) {
  guarded(c, "bcast", [&] {
    if (auto* g = node_group(c); g && !pair_over_messages(c, bytes)) return g->bcast(data, bytes, root);
    if (auto* h = hierarchy(c)) return hier_bcast(c, *h, data, bytes, root);
    if (scatter_allgather_bcast(c, bytes)) return scatter_allgather(c, static_cast<std::byte*>(data), bytes, root);
    int p = c.size, vr = (c.rank - root + p) % p;
    int mask = 1;
    while (mask < p) {
      if (vr & mask) {
        coll_recv(c, data, bytes, (vr - mask + root) % p, kBcast);
        break;
      }
      mask <<= 1;
    }
    for (mask >>= 1; mask > 0; mask >>= 1)
      if (vr + mask < p) coll_send(c, data, bytes, (vr + mask + root) % p, kBcast);
  });
}

}  // namespace ipc::detail
