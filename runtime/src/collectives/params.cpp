// The parameters of the collectives, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::detail::collectives,
           {"IPC_SHM_COLL", "auto", "collectives through one shared segment when all ranks share a node: bytes of each rank's slot (auto: 256 KiB, less beyond 33 ranks), 0 to run them over messages"},
           {"IPC_COLL_FLAT", "auto", "collectives: flat barrier and small allreduce (auto: when ranks outnumber the node's CPUs), 1 or 0"});
