// How a process learns its job. Under ipcrun, from the environment contract:
//   IPC_RANK, IPC_SIZE, IPC_LOCAL_RANK, IPC_LOCAL_SIZE, IPC_NODE, IPC_JOB,
//   IPC_BOOTSTRAP (host:port of the key-value server: its host's agent), IPC_JOB_SECRET (64 hex).
// With none of them set, the process is a job of one rank (singleton).
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

/// Reads the contract. @throws ipc::BootstrapError naming the variable that is
/// missing or malformed.
JobInfo read_environment();

/// The store of this job: ipcrun's server, or an in-memory one for a singleton.
std::unique_ptr<Store> open_store(const JobInfo& job);

}  // namespace ipc::bootstrap
