// What the collectives of a job share, and how they set it up at start-up.
//
// Two job-wide decisions, the same on every rank: whether the world's collectives run
// in a node group (one shared segment, when every rank of the job is on one node and
// speaks shm), and whether small collectives go flat (when a node has more ranks than
// CPUs). The collectives make them from start-up keys of their own, put before the
// job's first fence and read after it:
//   coll/<rank>   "<cpus>"                 every rank
//   coll/flat     IPC_COLL_FLAT            rank 0's (overrides the CPU count)
//   coll/hier     IPC_COLL_HIER            rank 0's: node-aware collectives across nodes
//   coll/force    IPC_COLL_<OP>=ALGORITHM  rank 0's forced algorithms (checked there)
//   coll/group    the node group's segment rank 0 made ("" : none)
//   coll/pair     rank 0's: "1" when its shm transport copies rendezvous payloads once
//                 (large bcast and all-to-all between two ranks of a node then go as
//                 messages: collectives/choice.hpp)
// The engine and the transports' cards know nothing of them.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <vector>

#include "bootstrap/bootstrap.hpp"
#include "collectives/node_group.hpp"
#include "transport/transport.hpp"

namespace ipc::detail {

class Engine;

/// Algorithms a job may force (IPC_COLL_<OP>, rank 0's): "" leaves the choice to the
/// size and rank count (collectives/choice.hpp).
enum class CollOp { barrier, bcast, allreduce, allgather, alltoall, count };

struct Hierarchy;

struct CollShared {
  CollShared();
  ~CollShared();
  std::unique_ptr<NodeGroup> group;  // the world's node group, or null
  bool flat = false;                 // flat barrier and small allreduce, all-at-once exchanges
  std::uint32_t world = 0;           // the world's collective context (the group serves it only)
  int hier = -1;                     // node-aware across nodes: -1 auto, 0 never, 1 whenever possible
  bool pair_single_copy = false;     // coll/pair
  std::string forced[static_cast<int>(CollOp::count)];  // per operation, "" when not forced
  const std::string& force(CollOp op) const { return forced[static_cast<int>(op)]; }

  // The node-aware layout of each communicator that spans nodes (collectives/hierarchy.hpp),
  // made on its first collective.
  mutable std::mutex hier_mu;
  mutable std::unordered_map<std::uint32_t, std::unique_ptr<Hierarchy>> hierarchies;

  // Node groups of communicators other than the world whose ranks share a node
  // (coll_make_node_group), by collective context; what they need to be made.
  std::string job;
  const base::Doorbell* bell = nullptr;
  mutable std::mutex groups_mu;
  mutable std::unordered_map<std::uint32_t, std::unique_ptr<NodeGroup>> groups;
};

/// Start-up of the collectives, around the job's first fence.
class CollSetup {
 public:
  /// Before the fence: puts this rank's keys; rank 0 makes the node group's segment
  /// when every rank is on its node (`shm`: the shm transport is allowed;
  /// `single_copy`: it copies rendezvous payloads once).
  void publish(bootstrap::Store& store, const bootstrap::JobInfo& job, bool shm, bool single_copy);
  /// After it: the job's decisions, from every rank's keys and cards; maps the group.
  /// `bell`: this rank's doorbell (the node group rings the others' with it).
  std::unique_ptr<CollShared> finish(const bootstrap::KeyValues& kv, const std::vector<transport::PeerCard>& cards,
                                     Engine& engine, const bootstrap::JobInfo& job, const base::Doorbell& bell);
  /// After the second fence every rank has mapped the group: its name can go.
  void unlink();

 private:
  NodeSegment segment_;
  CollShared* shared_ = nullptr;
};

}  // namespace ipc::detail
