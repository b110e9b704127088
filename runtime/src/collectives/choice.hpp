// Which algorithm each collective uses, in one place. Measured on 2 to 8 ranks of one
// node (bench/compare): the ring allreduce wins from 16 KiB on; on a node whose ranks
// outnumber its CPUs the cost is getting every rank scheduled, and flat algorithms
// (all to rank 0, rank 0 to all) need two scheduling rounds where tree and
// dissemination ones need log2 p.
#pragma once

#include <cstddef>

#include <string>

#include "collectives/api.hpp"
#include "collectives/shared.hpp"

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

/// The algorithm IPC_COLL_<OP> forces for the job ("" when none: the choice below).
const std::string& forced(const CollContext& c, CollOp op);

/// Bcast and all-to-all of 32 KiB and more between the two ranks of a node group go
/// as messages when shm copies rendezvous payloads once (coll/pair): one copy, by the
/// receiver, against two through the group's slots. 2 ranks, alternating runs against
/// the slots: bcast 32 KiB / 64 KiB / 1 MiB 0.72 / 0.31 / 0.74 of the time, all-to-all
/// 0.62 / 0.64 / 0.82; 4-16 KiB within the noise. From 3 ranks on the slots win (each
/// rank copies once from the root's slot; 4 ranks, bcast 64 KiB: 17 against 42 µs).
inline bool pair_over_messages(const CollContext& c, std::size_t bytes) {
  return c.size == 2 && c.shared && c.shared->pair_single_copy && bytes >= 32 * 1024;
}

/// A scatter of blocks of 16 KiB and more among up to 4 ranks goes as messages when
/// shm copies rendezvous payloads once: each rank copies its block once from the
/// root's memory, where through the slots the root first copies all of them, alone.
/// Alternating runs against the slots, blocks of 16 / 32 / 64 KiB: 2 ranks 0.59 /
/// 0.44 / 0.39 of the time, 4 ranks (on 2 CPUs) 0.57 / 0.72 / 0.64; 8 KiB blocks
/// (eager, copied twice) 1.4-2.0. Not on 8 ranks over 2 CPUs: the root waits there for
/// seven readers to get a CPU each time, where through the slots it runs two scatters
/// ahead of them (16 / 64 KiB 2.7 / 1.5 of the time, spread 0.5-5).
inline bool scatter_over_messages(const CollContext& c, std::size_t block) {
  return c.size <= 4 && c.shared && c.shared->pair_single_copy && block >= 16 * 1024;
}

enum class AllreduceAlg { doubling, ring, rabenseifner, flat };
inline AllreduceAlg allreduce_algorithm(const CollContext& c, std::size_t bytes, std::size_t count) {
  const std::string& f = forced(c, CollOp::allreduce);
  bool ring_fits = count >= static_cast<std::size_t>(c.size);  // a block per rank
  if (f == "ring" && ring_fits) return AllreduceAlg::ring;
  if (f == "rabenseifner") return AllreduceAlg::rabenseifner;
  if (f == "flat") return AllreduceAlg::flat;
  if (f == "doubling") return AllreduceAlg::doubling;
  // Large: both move 2(p-1)/p of the vector; from 5 ranks on, Rabenseifner's 2 log2 p
  // steps beat the ring's 2(p-1) (8 ranks, 64 KiB to 1 MiB: about 0.7 of the ring's time).
  if (bytes >= 16 * 1024 && ring_fits) return c.size > 4 ? AllreduceAlg::rabenseifner : AllreduceAlg::ring;
  if (c.size > 2 && flat(c)) return AllreduceAlg::flat;
  return AllreduceAlg::doubling;
}

enum class AllgatherAlg { all, doubling, bruck, ring };
inline AllgatherAlg allgather_algorithm(const CollContext& c, std::size_t block_bytes) {
  const std::string& f = forced(c, CollOp::allgather);
  bool pow2 = (c.size & (c.size - 1)) == 0;
  if (f == "all") return AllgatherAlg::all;
  if (f == "doubling" && pow2) return AllgatherAlg::doubling;
  if (f == "bruck") return AllgatherAlg::bruck;
  if (f == "ring" || f == "doubling") return AllgatherAlg::ring;
  if (flat(c) && block_bytes <= 64 * 1024) return AllgatherAlg::all;
  if (block_bytes * static_cast<std::size_t>(c.size) <= 64 * 1024)  // log2 p rounds for small totals
    return pow2 ? AllgatherAlg::doubling : AllgatherAlg::bruck;
  return AllgatherAlg::ring;
}

enum class AlltoallAlg { all, bruck, pairwise };
/// Bruck's algorithm for small blocks (log2 p rounds, each moving half the data, instead
/// of p-1 rounds): up to 1 KiB a block on 3 ranks or more (8 ranks over messages:
/// 0.37 of pairwise's time at 8 B, 0.41 at 1 KiB).
inline AlltoallAlg alltoall_algorithm(const CollContext& c, std::size_t block_bytes) {
  const std::string& f = forced(c, CollOp::alltoall);
  if (f == "all") return AlltoallAlg::all;
  if (f == "bruck") return AlltoallAlg::bruck;
  if (f == "pairwise") return AlltoallAlg::pairwise;
  if (flat(c) && block_bytes <= 64 * 1024) return AlltoallAlg::all;
  if (c.size > 2 && block_bytes <= 1024) return AlltoallAlg::bruck;
  return AlltoallAlg::pairwise;
}

inline bool flat_barrier(const CollContext& c) {
  const std::string& f = forced(c, CollOp::barrier);
  if (!f.empty()) return f == "flat";
  return c.size > 2 && flat(c);
}

/// Scatter + allgather rather than a binomial tree: the root sends its data once
/// instead of log2 p times (from 256 KiB, on 3 ranks or more).
inline bool scatter_allgather_bcast(const CollContext& c, std::size_t bytes) {
  const std::string& f = forced(c, CollOp::bcast);
  if (c.size < 3 || bytes < static_cast<std::size_t>(c.size)) return false;
  if (!f.empty()) return f == "scatter_allgather";
  return bytes >= 256 * 1024;
}

}  // namespace ipc::detail
