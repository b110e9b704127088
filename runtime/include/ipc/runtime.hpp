/// @file runtime.hpp
/// The process's membership in a job.
#pragma once

#include <memory>
#include <string>

#include "ipc/communicator.hpp"

namespace ipc {

namespace detail {
struct RuntimeImpl;
}

/// Joins the job this process belongs to: started by ipcrun, the job its environment
/// describes; run bare, a job of one rank. Create one Runtime, early in main(); its
/// destructor waits until every rank has reached its own (a fence) and then leaves.
///
/// @throws ipc::BootstrapError when the job's start-up fails (message names the cause).
class Runtime {
 public:
  /// Joins the job (see above). Only one Runtime at a time per process.
  /// @throws ipc::BootstrapError when start-up fails (bad environment, unreachable bootstrap
  /// server), ipc::Timeout when the bootstrap server does not answer, or the other ranks do not
  /// all reach start-up, within IPC_BOOTSTRAP_TIMEOUT, ipc::UsageError
  /// when a Runtime already exists in the process or an IPC_* environment parameter is
  /// malformed (the message names the variable), ipc::Error when a transport cannot start
  /// (e.g. its shared-memory segment or listening socket cannot be created) or none reaches
  /// some rank, ipc::ProtocolError when a peer's start-up record is malformed.
  Runtime();
  /// The same as Runtime(), for programs written in the style of MPI_Init(&argc, &argv).
  /// Leaves argc and argv as they are: ipc takes nothing from the command line (ipcrun
  /// passes the job through the environment).
  /// @throws as Runtime().
  Runtime(int& argc, char**& argv);
  /// Waits until every rank has reached its own destructor (unless unwinding from an
  /// exception), then leaves the job. Never throws: a failure is reported on stderr.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// All ranks of the job.
  Communicator& world();
  /// This process's rank in the job, 0 to size()-1.
  int rank() const;
  /// The number of ranks in the job.
  int size() const;
  /// The node (host) this rank runs on, as ipcrun (or mpirun, srun) placed it.
  const std::string& node() const;
  /// The job's id, the same on every rank and different for every job running at the
  /// same time (for naming a job's files).
  const std::string& job() const;
  /// The name of the transport used to reach `peer` ("self", "tcp", ...).
  /// @throws ipc::UsageError for a peer outside the job.
  std::string transport_to(int peer) const;

 private:
  std::unique_ptr<detail::RuntimeImpl> impl_;
};

}  // namespace ipc
