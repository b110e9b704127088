// Where a rank is in its job: what the bootstrap learns (ipcrun's environment, PMIx
// under mpirun or srun, or a singleton) and every layer starts from.
#pragma once

#include <string>

namespace ipc::base {

/// Who started the job: ipcrun (its environment), an engine (mpirun, srun) through
/// PMIx, or nobody (a job of one rank).
enum class Launcher { singleton, ipcrun, engine };

struct JobPlace {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // among the ranks of its node
  int local_size = 1;
  std::string node;  // the node id the launcher placed it on
  std::string job;   // the job's id (base/names.hpp)
  Launcher launcher = Launcher::singleton;
};

}  // namespace ipc::base
