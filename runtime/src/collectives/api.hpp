/// @file detail/collectives.hpp
/// The type-erased layer below the typed collectives: bytes, counts and a reduction
/// as a function pointer (so that the algorithms compile once, not per type).
//
// The collectives' entry points, which the typed API calls. Published to programs as
// <ipc/detail/collectives.hpp>, a copy the build makes (runtime/CMakeLists.txt,
// ipc_public_header), hence an include guard rather than #pragma once: a
// translation unit of the runtime may reach both.
#ifndef IPC_COLLECTIVES_API_HPP
#define IPC_COLLECTIVES_API_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ipc::detail {

class Engine;
struct CollShared;

/// inout[i] = op(inout[i], in[i]) for i < count elements.
using ReduceFn = void (*)(void* inout, const void* in, std::size_t count);
struct Reduction {
  ReduceFn apply = nullptr;
  std::size_t elem_size = 0;
};

/// The built-in operations the library has compiled kernels for (collectives/kernels.cpp),
/// on integers of 1, 2, 4 and 8 bytes and on float and double.
enum class ReduceOp : std::uint8_t { sum, prod, min, max, band, bor, bxor };
enum class ReduceKind : std::uint8_t { unsigned_int, signed_int, floating };
/// The library's kernel for `op` on elements of `kind` and `elem_size` bytes, built for
/// the widest vector instructions this CPU has, or null where it has none (bitwise
/// operations on floating point, other sizes). Its results are bitwise those of the
/// element-by-element loop the typed API instantiates, except that integer sums and
/// products wrap around where that loop's would overflow.
ReduceFn builtin_reduction(ReduceOp op, ReduceKind kind, std::size_t elem_size) noexcept;

/// The communicator a collective runs on: its engine, what the job's collectives
/// share (node group, flat decision), its collective context (apart from the user's
/// messages), this rank and the size.
struct CollContext {
  Engine* engine;
  const CollShared* shared;
  std::uint32_t context;
  int rank;
  int size;
};

/// `symmetric`: in a node group, each rank waits for all (no rank leaves first).
void coll_barrier(const CollContext& c, bool symmetric = false);
void coll_bcast(const CollContext& c, void* data, std::size_t bytes, int root);
void coll_allreduce(const CollContext& c, void* data, std::size_t count, Reduction op);
void coll_reduce(const CollContext& c, void* data, std::size_t count, Reduction op, int root);
void coll_allgather(const CollContext& c, const void* in, std::size_t bytes, void* out);
void coll_gather(const CollContext& c, const void* in, std::size_t bytes, void* out, int root);
void coll_alltoall(const CollContext& c, const void* in, std::size_t bytes, void* out);

/// Collective over a new communicator `c`: when all its ranks are on this node and
/// speak shm, gives its collectives a node group (a shared segment) of their own, as
/// the world's have; else (or when the segment cannot be made) they run over messages.
void coll_make_node_group(const CollContext& c);

// Blocks of varying sizes: counts and displacements in bytes, one per rank (read on
// the root only for gatherv and scatterv).
void coll_scatter(const CollContext& c, const void* in, std::size_t bytes, void* out, int root);
void coll_gatherv(const CollContext& c, const void* in, std::size_t bytes, void* out, const std::size_t* counts,
                  const std::size_t* displs, int root);
void coll_scatterv(const CollContext& c, const void* in, const std::size_t* counts, const std::size_t* displs,
                   void* out, std::size_t bytes, int root);
void coll_allgatherv(const CollContext& c, const void* in, std::size_t bytes, void* out, const std::size_t* counts,
                     const std::size_t* displs);
void coll_alltoallv(const CollContext& c, const void* in, const std::size_t* send_counts,
                    const std::size_t* send_displs, void* out, const std::size_t* recv_counts,
                    const std::size_t* recv_displs);
/// `data` holds counts[0] + ... + counts[p-1] elements (and is used as scratch); block
/// r of their reduction over every rank lands in `out`. Counts in elements.
void coll_reduce_scatter(const CollContext& c, void* data, const std::size_t* counts, Reduction op, void* out);
/// out = in(0) op ... op in(rank) (inclusive), or up to rank-1 (exclusive; rank 0's
/// `out` is left as it is). `in` and `out` may be the same.
void coll_scan(const CollContext& c, const void* in, void* out, std::size_t count, Reduction op, bool exclusive);

/// acc = acc op theirs, for values serialized to bytes (a user's callable on any
/// serializable type; `state` is the caller's).
using SerialCombine = void (*)(void* state, std::vector<std::byte>& acc, const std::vector<std::byte>& theirs);
/// The reduction of every rank's serialized `value` into the root's `value`.
void coll_reduce_serialized(const CollContext& c, std::vector<std::byte>& value, SerialCombine combine, void* state,
                            int root);

}  // namespace ipc::detail

#endif  // IPC_COLLECTIVES_API_HPP
