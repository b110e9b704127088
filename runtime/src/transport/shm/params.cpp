// The parameters of the shared-memory transport, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::transport::shm,
           {"IPC_SHM_EAGER", "auto", "shm: messages up to this many bytes go through the rings, larger ones by rendezvous; auto: 8192 when rendezvous messages are copied once (IPC_SHM_CMA), else 65536"},
           {"IPC_SHM_RING", "auto", "shm: bytes of each ring (one per ordered pair of ranks of a node); auto: 512 KiB up to 11 ranks per node, then less (64 MiB per node, at least 64 KiB each)"},
           {"IPC_SHM_CHUNK", "16384", "shm: payload bytes per ring record; larger frames stream through in pipelined chunks"},
           {"IPC_SHM_CMA", "auto", "shm: 1: the receiver copies rendezvous messages once, from the sender's memory (process_vm_readv); 0: pipelined copy through the rings; auto: 1 where the kernel allows it between the ranks (no Yama ptrace restriction, the system call not filtered): docs/transports.md"});
