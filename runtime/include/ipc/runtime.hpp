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
  Runtime();
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// All ranks of the job.
  Communicator& world();
  int rank() const;
  int size() const;
  /// The node (host) this rank runs on, as ipcrun placed it.
  const std::string& node() const;
  /// The name of the transport used to reach `peer` ("self", "tcp", ...).
  std::string transport_to(int peer) const;

 private:
  std::unique_ptr<detail::RuntimeImpl> impl_;
};

}  // namespace ipc
