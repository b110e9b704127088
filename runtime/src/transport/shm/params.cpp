// The parameters of the shared-memory transport, declared where they are used (base/params.hpp).
#include "base/params.hpp"

IPC_PARAMS(ipc::transport::shm,
           {"IPC_SHM_EAGER", "auto", "shm: messages up to this many bytes go through the rings, larger ones by rendezvous; auto: 8192 when rendezvous messages are copied once (IPC_SHM_CMA), else 16384"},
           {"IPC_SHM_RING", "auto", "shm: bytes of each ring (one per ordered pair of ranks of a node); auto: 512 KiB up to 11 ranks per node, then less (64 MiB per node, at least 64 KiB each)"},
           {"IPC_SHM_EAGER_ROOM", "65536", "shm: messages larger than IPC_SHM_EAGER and up to this many bytes go through the ring too when it has room for all of them at once (else by rendezvous); 0: never (docs/transports.md)"},
           {"IPC_SHM_EAGER_DRAINED", "262144", "shm: messages larger than that and up to this many bytes go through the ring too when the receiver has taken everything sent before them (an exchange, not a stream) and the ring has room; 0: never (docs/transports.md)"},
           {"IPC_SHM_CHUNK", "16384", "shm: payload bytes per ring record; larger frames stream through in pipelined chunks"},
           {"IPC_SHM_WRAP", "8192", "shm: a sender of small records (up to 256 bytes each, or up to IPC_SHM_WRAP_RECORDS when its receiver answered its last two) whose receiver has taken everything goes back to the ring's start once this many bytes into it, so that exchanges that wait for an answer reuse lines both cores hold; 0: never (docs/transports.md)"},
           {"IPC_SHM_WRAP_ANSWERED", "512", "shm: the same as IPC_SHM_WRAP (the smaller of the two applies; 0: IPC_SHM_WRAP) for records up to 512 bytes of a sender whose receiver sent something back after each of its last two records: an exchange that waits for its answers cycles through the first lines only (docs/transports.md)"},
           {"IPC_SHM_WRAP_RECORDS", "16384", "shm: the largest record (head and payload) that may go back early (IPC_SHM_WRAP) when its receiver sent something back after each of the sender's last two records"},
           {"IPC_SHM_SHARED_COPY", "262144", "shm: with the single copy (IPC_SHM_CMA), rendezvous messages from this many bytes are copied by both sides at once, the receiver reading the first half while the sender writes the second, when the sender is in the library to take its part (else the receiver takes it back); 0: never"},
           {"IPC_SHM_CMA", "auto", "shm: 1: the receiver copies rendezvous messages once, from the sender's memory (process_vm_readv); 0: pipelined copy through the rings; auto: 1 where the kernel allows it between the ranks (no Yama ptrace restriction, the system call not filtered): docs/transports.md"});
