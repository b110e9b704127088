// Node-aware collectives for communicators that span nodes.
//
// Across nodes a collective's cost is the network: a tree or ring over all ranks
// crosses it once per rank, though the ranks of one node could have combined their
// parts first over shared memory. So, as Open MPI's han and MPICH's SMP-aware
// collectives do, such a communicator's collectives run in three steps: within each
// node (its ranks, over shm), among one leader per node (the lowest rank of each
// node, over the network), and within each node again. allreduce: reduce to the
// leader, allreduce among leaders, bcast from the leader; barrier: barrier, barrier
// of leaders, barrier; bcast: the root's data to its node's leader, bcast among
// leaders, bcast within nodes; reduce: reduce within nodes, reduce among leaders to
// the root's node leader, then to the root; allgather: gather to the leader,
// allgatherv of whole nodes among leaders (into rank order), bcast within nodes.
//
// The two parts are contexts derived from the communicator's collective context
// (core/context.hpp: node_context, leaders_context) with groups every rank computes
// alike from the job's node map, so making them needs no message. Each step is an
// ordinary collective on its part, with its own algorithm choice; a lost rank fails
// the step (revoking the part's context) and then the whole collective (revoking the
// communicator's).
//
// The node step runs in a node group of its own (a shared segment, as a one-node
// communicator's: coll_make_node_group) when its ranks speak shm.
//
// Used when the communicator spans 2 nodes or more and some node has 2 ranks or more
// (IPC_COLL_HIER=auto; 1: whenever it spans 2 nodes; 0: never).
#pragma once

#include <vector>

#include "collectives/api.hpp"

namespace ipc::detail {

struct Hierarchy {
  bool use = false;
  int nodes = 0;
  std::vector<int> node_of;                // communicator rank -> node index (in order of first rank)
  std::vector<std::vector<int>> members;   // node index -> its communicator ranks, ascending
  int node_rank = 0, node_size = 1;        // this rank in its node's part
  int leader_rank = -1;                    // this rank among the leaders (-1: not one)
  CollContext node, leaders;               // the parts (leaders: valid on leaders only)
};

/// The node-aware layout of `c`'s communicator when its collectives should use it,
/// else null. Made on the first call, then cached (CollShared).
const Hierarchy* hierarchy(const CollContext& c);

void hier_barrier(const CollContext& c, const Hierarchy& h);
void hier_bcast(const CollContext& c, const Hierarchy& h, void* data, std::size_t bytes, int root);
void hier_allreduce(const CollContext& c, const Hierarchy& h, void* data, std::size_t count, Reduction op);
void hier_reduce(const CollContext& c, const Hierarchy& h, void* data, std::size_t count, Reduction op, int root);
void hier_allgather(const CollContext& c, const Hierarchy& h, const void* in, std::size_t bytes, void* out);

}  // namespace ipc::detail
