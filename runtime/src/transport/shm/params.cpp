// The parameters of the shared-memory transport, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::transport::shm,
           {"IPC_SHM_EAGER", "65536", "shm: messages up to this many bytes go through the rings, larger ones by rendezvous"},
           {"IPC_SHM_RING", "auto", "shm: bytes of each ring (one per ordered pair of ranks of a node); auto: 512 KiB up to 11 ranks per node, then less (64 MiB per node, at least 64 KiB each)"},
           {"IPC_SHM_CHUNK", "16384", "shm: payload bytes per ring record; larger frames stream through in pipelined chunks"},
           {"IPC_SHM_CMA", "0", "shm: 1: copy rendezvous messages once with process_vm_readv where the kernel allows; 0: pipelined copy through the rings (faster where both ranks run at once: docs/transports.md)"});
