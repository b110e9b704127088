// Broadcast: binomial tree rooted at `root` (ceil(log2 p) rounds; each rank receives
// once and forwards to the subtrees below it).
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"

namespace ipc::detail {

void coll_bcast(const CollContext& c, void* data, std::size_t bytes, int root) {
  guarded(c, "bcast", [&] {
    if (auto* g = node_group(c)) return g->bcast(data, bytes, root);
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
