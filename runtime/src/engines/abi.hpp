// The engines module (libipc-engines.so): what a rank needs of PMIx and of MPI, behind
// plain function tables, loaded only when an engine (mpirun, srun --mpi=pmix) started
// the rank.
//
// Why a module: a program that links PMIx and Open MPI loads them, and what they load
// (Open MPI's run-time and portability layers, hwloc, libevent, munge, udev), in every
// process at every start, engine or not. Measured on 2 CPUs: 3 ms more per process
// start (a program doing nothing: 1.0 against 4.5 ms with them), a launch of 64 ranks
// by ipcrun 17 % longer (0.35 against 0.29 s, 0.58 against 0.46 s of CPU). Under an
// engine the module is loaded on the first call (bootstrap, mpi transport), once.
//
// The tables speak no type of PMIx or MPI: handles travel as integers wide enough for
// any implementation's (Open MPI's are pointers, MPICH's ints), so that this header
// and the runtime compile without either library.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ipc::engines {

/// Bumped whenever a table changes: a module of another version is not used.
inline constexpr int kAbi = 1;

using Handle = std::intptr_t;

/// MPI point-to-point on a duplicate of MPI_COMM_WORLD (the mpi transport). Every call
/// returns MPI's code (`success` when it went well) unless it says otherwise.
struct MpiCalls {
  int success;
  int thread_serialized;  // MPI_THREAD_SERIALIZED
  int any_source;         // MPI_ANY_SOURCE
  Handle request_null;    // MPI_REQUEST_NULL
  Handle comm_null;       // MPI_COMM_NULL
  int (*initialized)(int* flag);
  int (*init_thread)(int required, int* provided);  // without arguments
  int (*finalize)();
  /// MPI_Comm_dup of MPI_COMM_WORLD, whose errors then return (MPI_ERRORS_RETURN).
  int (*dup_world)(Handle* comm);
  int (*comm_free)(Handle* comm);
  int (*comm_size)(Handle comm, int* size);
  int (*comm_rank)(Handle comm, int* rank);
  int (*isend)(const void* data, int bytes, int dest, int tag, Handle comm, Handle* request);
  int (*irecv)(void* data, int bytes, int source, int tag, Handle comm, Handle* request);
  /// MPI_Test; on completion (or an error naming one) `source` and `bytes` are the
  /// status's (source -1 when it names none).
  int (*test)(Handle* request, int* flag, int* source, int* bytes);
  int (*testall)(int count, Handle* requests, int* flag);
  /// MPI_Cancel, then MPI_Request_free (`wait` 0) or MPI_Wait (`wait` 1).
  void (*cancel)(Handle* request, int wait);
  /// The text of an error code, at most `room` bytes; returns its length.
  int (*error_string)(int code, char* text, int room);
};

/// What the bootstrap asks of PMIx. Calls return PMIx's status (`success` when it
/// went well).
struct PmixCalls {
  int success;
  int timeout;  // PMIX_ERR_TIMEOUT
  /// PMIx_Init; this process's namespace (NUL-terminated, at most `room` bytes with
  /// the NUL) and rank.
  int (*init)(char* nspace, std::size_t room, std::uint32_t* rank);
  int (*finalize)();
  /// A number the engine keeps about the job: 0 its size (PMIX_JOB_SIZE), 1 this
  /// rank's place on its node (PMIX_LOCAL_RANK), 2 the node's rank count
  /// (PMIX_LOCAL_SIZE). `*type` is -1 for a number, else the value's type (which may
  /// be PMIX_UNDEF, 0), and `*value` is then left alone.
  int (*number)(int which, std::uint64_t* value, int* type);
  /// This rank's host name as the engine knows it (PMIX_HOSTNAME), NUL-terminated;
  /// empty when it gives none.
  int (*hostname)(char* name, std::size_t room);
  /// PMIx_Put (global) of a byte object, then PMIx_Commit. `*step` says which failed:
  /// 0 the put, 1 the commit.
  int (*put_bytes)(const char* key, const void* data, std::size_t size, int* step);
  /// PMIx_Get of rank `rank`'s byte object under `key`, handed to `take` (nothing
  /// for a value of another type).
  int (*get_bytes)(std::uint32_t rank, const char* key, void (*take)(void* context, const char* data, std::size_t size),
                   void* context);
  /// PMIx_Fence over the job, collecting data; `seconds` 0 waits for ever.
  int (*fence)(int seconds);
  const char* (*error_string)(int status);
};

/// What the module exports as `ipc_engines_module` (extern "C"): tables are null when
/// the module was built without that library.
struct Module {
  int abi;
  const PmixCalls* pmix;
  const MpiCalls* mpi;
};

/// The module, loaded on the first call: from IPC_ENGINES when set, else by name (the
/// program's run path names the build's or the installation's directory), then where
/// the configured prefix installs it.
/// @throws ipc::BootstrapError naming every place tried and why each failed.
const Module& module();

/// The module's tables, looked up once (a failed look is tried again on the next
/// call). @throws as module(), and when the module was built without that library:
/// ipc::BootstrapError for PMIx, ipc::Error for MPI.
const PmixCalls& pmix();
const MpiCalls& mpi();

}  // namespace ipc::engines
