// The parameters of the collectives, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::detail::collectives,
           {"IPC_SHM_COLL", "auto", "collectives through one shared segment when all ranks share a node: bytes of each rank's slot (auto: 256 KiB, less beyond 33 ranks), 0 to run them over messages", count},
           {"IPC_COLL_FLAT", "auto", "collectives: flat barrier and small allreduce (auto: when ranks outnumber the node's CPUs), 1 or 0", boolean},
           {"IPC_COMM_GROUPS", "64", "communicators (besides the world) of one node that get a shared segment for their collectives, per rank; later ones run them over messages", count},
           {"IPC_COLL_HIER", "auto", "collectives of communicators that span nodes: node-aware (within each node, then one leader per node over the network; auto: when some node has 2 ranks or more), 1 (whenever 2 nodes or more) or 0", boolean},
           {"IPC_COLL_BARRIER", "auto", "barrier: auto (flat when ranks outnumber the node's CPUs), dissemination (in a node group: each rank waits for all the others) or flat (all tell rank 0, rank 0 releases all, in a node group too)", choice, "dissemination flat"},
           {"IPC_COLL_BCAST", "auto", "bcast over messages: auto (binomial up to 256 KiB, then scatter + allgather), binomial or scatter_allgather", choice, "binomial scatter_allgather"},
           {"IPC_COLL_ALLREDUCE", "auto", "allreduce over messages: auto (recursive doubling up to 16 KiB, then a reduce-scatter + allgather: ring up to 4 ranks, rabenseifner beyond; flat on oversubscribed nodes), doubling, ring, rabenseifner (recursive halving + doubling) or flat", choice, "doubling ring rabenseifner flat"},
           {"IPC_COLL_ALLGATHER", "auto", "allgather over messages: auto, doubling (powers of two), bruck, ring or all (every block to every rank at once)", choice, "doubling bruck ring all"},
           {"IPC_COLL_ALLTOALL", "auto", "alltoall over messages: auto, pairwise, bruck (small blocks) or all (every pair at once)", choice, "pairwise bruck all"});
