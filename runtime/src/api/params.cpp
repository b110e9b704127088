// The parameters of the API's tools (semaphores, mutexes, channels), declared where
// they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::detail::tools,
           {"IPC_TOOLS_HOME", "auto", "where semaphores, mutexes and channels keep their state: auto (shared memory when the communicator's ranks share a node, else a queue on its rank 0, the home) or always (the home's queue)", choice, "always"});
