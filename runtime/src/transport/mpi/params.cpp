// The parameters of the MPI transport, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::transport::mpi,
           {"IPC_MPI_EAGER", "65536", "mpi: messages up to this many bytes go eagerly, larger ones by rendezvous", count},
           {"IPC_MPI_INLINE", "65536", "mpi: payloads up to this many bytes travel in their frame's MPI message (copied; 8 receives of this size stay posted); larger ones as messages of their own, without a copy", count},
           {"IPC_MPI_SLEEP_POLL_MS", "1", "mpi: a rank asleep in a wait polls MPI this often (MPI cannot wake it): the latency of a message to a sleeping rank", count});
