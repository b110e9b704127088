// How a process learns its job. Under ipcrun, from the environment contract:
//   IPC_RANK, IPC_SIZE, IPC_LOCAL_RANK, IPC_LOCAL_SIZE, IPC_NODE, IPC_JOB,
//   IPC_BOOTSTRAP (host:port of the key-value server: its host's agent), IPC_JOB_SECRET (64 hex).
// Under an engine (mpirun, srun --mpi=pmix: PMIX_NAMESPACE is set), from PMIx
// (bootstrap/pmix.cpp). With none of them set, the process is a job of one rank
// (singleton), at once: PMIx is not even tried.
#pragma once

#include <memory>
#include <string>

#include "base/job.hpp"
#include "bootstrap/store.hpp"
#include "wire/secret.hpp"

namespace ipc::bootstrap {

struct JobInfo : base::JobPlace {
  std::string server;  // host:port, empty for a singleton
  wire::Secret secret{};
  bool singleton = true;
};

/// Reads the contract (or asks PMIx). @throws ipc::BootstrapError naming the variable
/// that is missing or malformed, or what PMIx refused.
JobInfo read_environment();

/// The store of this job: ipcrun's server, the engine's PMIx, or an in-memory one for
/// a singleton.
std::unique_ptr<Store> open_store(const JobInfo& job);

#if IPC_WITH_PMIX
/// Whether an engine started this process through PMIx (PMIX_NAMESPACE is set).
bool under_engine();
/// The job as the engine placed it (PMIx_Init; a first fence shares rank 0's secret).
JobInfo engine_job();
/// The engine's key-value exchange as a Store (its end ends the PMIx session).
std::unique_ptr<Store> engine_store(const JobInfo& job);
#endif

}  // namespace ipc::bootstrap
