// Which algorithm each collective uses, in one place. Measured on 2 to 8 ranks of one
// node (bench/compare): the ring allreduce wins from 16 KiB on; on a node whose ranks
// outnumber its CPUs the cost is getting every rank scheduled, and flat algorithms
// (all to rank 0, rank 0 to all) need two scheduling rounds where tree and
// dissemination ones need log2 p.
#pragma once

#include <cstddef>

#include "collectives/api.hpp"

namespace ipc::detail {

class NodeGroup;

/// The node group that runs collectives of `c` through shared memory: the world's,
/// when every rank of the job is on this node (decided once for the job, from the
/// cards); null otherwise, and the algorithms below run over messages.
NodeGroup* node_group(const CollContext& c);

/// Flat barrier and small allreduce, and all-at-once allgather and all-to-all up to
/// 64 KiB blocks: when a node of the job has more ranks than CPUs (rank 0's
/// IPC_COLL_FLAT=0/1 forces). Decided once for the job, so every rank agrees.
bool flat(const CollContext& c);

inline bool ring_allreduce(std::size_t bytes, std::size_t count, int ranks) {
  return bytes >= 16 * 1024 && count >= static_cast<std::size_t>(ranks);
}

inline bool doubling_allgather(std::size_t block_bytes, int ranks) {
  return (ranks & (ranks - 1)) == 0 && block_bytes * static_cast<std::size_t>(ranks) <= 64 * 1024;
}

}  // namespace ipc::detail
