// Where a rank is in its job: what the bootstrap learns (ipcrun's environment, or a
// singleton) and every layer starts from.
#pragma once

#include <string>

namespace ipc::base {

struct JobPlace {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // among the ranks of its node
  int local_size = 1;
  std::string node;  // the node id the launcher placed it on
  std::string job;   // the job's id (base/names.hpp)
};

}  // namespace ipc::base
