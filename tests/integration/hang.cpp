// Deliberately stuck programs, for ipcrun's hang diagnosis (hang.sh).
//   hang recv      ranks 0 and 1 each wait to receive from the other
//   hang coll      every rank but the last waits in allreduce; the last in a receive
//   hang mismatch  rank 0 waits in barrier, the others in allreduce (IPC_SHM_COLL=0)
//   hang stop      the last rank stops itself (SIGSTOP); the others wait in a barrier
// Each rank prints "rank R blocking (pid P)" just before it blocks.
#include <ipc/ipc.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  std::string mode = argc > 1 ? argv[1] : "";
  c.barrier();
  std::printf("rank %d blocking (pid %d)\n", me, static_cast<int>(::getpid()));
  std::fflush(stdout);
  if (mode == "recv") {
    if (me < 2) (void)c.recv<int>(1 - me, ipc::Tag{5});
  } else if (mode == "coll") {
    if (me == n - 1)
      (void)c.recv<int>(0, ipc::Tag{5});
    else
      (void)c.allreduce(me);
  } else if (mode == "mismatch") {
    if (me == 0)
      c.barrier();
    else
      (void)c.allreduce(me);
  } else if (mode == "stop") {
    if (me == n - 1) ::raise(SIGSTOP);
    c.barrier();
  } else {
    return 2;
  }
  return 0;
}
