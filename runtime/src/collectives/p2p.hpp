// Point-to-point steps of the collective algorithms, on the collective context.
#pragma once

#include <cstddef>
#include <vector>

#include "base/errors.hpp"
#include "core/diagnostics.hpp"
#include "collectives/choice.hpp"
#include "collectives/api.hpp"

namespace ipc::detail {

/// Leaves collective `op` after a lost rank: abandons the communicator's collectives
/// on every rank (Engine::revoke), so that survivors waiting on ranks that gave up
/// fail too, and throws the PeerLost every path reports alike: "rank 1 on n1:
/// allreduce failed: rank 2 on n1 is gone (...)".
[[noreturn]] void lost_in(const CollContext& c, const char* op, const PeerLost& e);

/// Runs the steps of collective `op` (every entry point's body).
template <class Steps>
void guarded(const CollContext& c, const char* op, Steps&& steps) {
  CollectiveNote note(*c.engine, c.context, op);
  try {
    steps();
  } catch (const PeerLost& e) {
    lost_in(c, op, e);
  }
}

void coll_send(const CollContext& c, const void* data, std::size_t bytes, int dest, int tag);
void coll_recv(const CollContext& c, void* data, std::size_t bytes, int source, int tag);
/// Sends to `dest` and receives from `source` at once (never deadlocks in a ring).
void coll_sendrecv(const CollContext& c, const void* out, std::size_t out_bytes, int dest, void* in,
                   std::size_t in_bytes, int source, int tag);

/// Posts every receive and every send at once, then waits for all: one scheduling
/// round on an oversubscribed node. sends/recvs: (peer, pointer, bytes).
struct Transfer {
  int peer;
  const void* out;
  void* in;
  std::size_t bytes;
};
void coll_exchange_all(const CollContext& c, const Transfer* xs, int n, int tag);
/// The same with sends and receives listed apart (sizes may differ, one side may be
/// missing): every receive posted, then every send, then all waited for.
struct Move {
  int peer;
  const void* data;
  std::size_t bytes;
};
struct Take {
  int peer;
  void* data;
  std::size_t bytes;
};
void coll_post_all(const CollContext& c, const Take* recvs, int nr, const Move* sends, int ns, int tag);
/// A message of any size from `source` (a serialized value's bytes).
std::vector<std::byte> coll_recv_any(const CollContext& c, int source, int tag);

// One tag per algorithm: ranks call collectives in the same order, and messages of a
// pair with one tag never overtake each other, so successive calls cannot mix.
// Flat variants have tags of their own: a rank that chose differently fails loudly
// instead of mixing messages.
enum CollTag : int {
  kBarrier = 1, kBcast, kAllreduce, kReduce, kAllgather, kGather, kAlltoall,
  kBarrierFlat, kAllreduceFlat, kAllgatherAll, kAlltoallAll,
  kScatter, kGatherv, kScatterv, kAllgatherv, kAlltoallv, kReduceScatter, kScan, kSerialReduce,
  kHierBcast, kHierReduce, kBcastScatter, kAllgatherBruck, kAllreduceHalving, kAlltoallBruck
};

}  // namespace ipc::detail
