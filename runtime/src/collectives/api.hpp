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

namespace ipc::detail {

class Engine;
struct CollShared;

/// inout[i] = op(inout[i], in[i]) for i < count elements.
struct Reduction {
  void (*apply)(void* inout, const void* in, std::size_t count) = nullptr;
  std::size_t elem_size = 0;
};

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

void coll_barrier(const CollContext& c);
void coll_bcast(const CollContext& c, void* data, std::size_t bytes, int root);
void coll_allreduce(const CollContext& c, void* data, std::size_t count, Reduction op);
void coll_reduce(const CollContext& c, void* data, std::size_t count, Reduction op, int root);
void coll_allgather(const CollContext& c, const void* in, std::size_t bytes, void* out);
void coll_gather(const CollContext& c, const void* in, std::size_t bytes, void* out, int root);
void coll_alltoall(const CollContext& c, const void* in, std::size_t bytes, void* out);

}  // namespace ipc::detail

#endif  // IPC_COLLECTIVES_API_HPP
