// Barrier. Dissemination: ceil(log2 p) rounds of empty messages; round k signals the
// rank 2^k ahead and waits for the one 2^k behind. When ranks outnumber CPUs, the time
// goes to getting every rank scheduled, not to messages: there, a flat barrier (all
// tell rank 0, rank 0 releases all) needs two scheduling rounds instead of log2 p.
// A node group's barrier is one round of flags (each rank waits for all), released by
// rank 0 there too (NodeGroup::barrier): rank 0 leaves first, as from the messages'.
#include <vector>

#include "collectives/hierarchy.hpp"
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"
#include "core/engine.hpp"

namespace ipc::detail {

void coll_barrier(const CollContext& c, bool symmetric) {
  guarded(c, "barrier", [&] {
    if (auto* g = node_group(c)) return g->barrier(!symmetric && flat_barrier(c));
    if (auto* h = hierarchy(c)) return hier_barrier(c, *h);
    if (flat_barrier(c)) {
      if (c.rank != 0) {
        coll_sendrecv(c, nullptr, 0, 0, nullptr, 0, 0, kBarrierFlat);
        return;
      }
      for (int q = 1; q < c.size; ++q) coll_recv(c, nullptr, 0, q, kBarrierFlat);
      for (int q = 1; q < c.size; ++q) coll_send(c, nullptr, 0, q, kBarrierFlat);
      return;
    }
    for (int d = 1; d < c.size; d <<= 1)
      coll_sendrecv(c, nullptr, 0, (c.rank + d) % c.size, nullptr, 0, (c.rank - d + c.size) % c.size, kBarrier);
  });
}

}  // namespace ipc::detail
