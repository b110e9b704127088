// A program that uses MPI itself beside ipc: MPI_Init before the Runtime, MPI calls
// and ipc calls mixed, MPI_Finalize after it. ipc then leaves MPI's start and end to
// the program (run under mpirun, with the mpi transport forced or not).
#include <ipc/ipc.hpp>
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int bad = 0;
  {
    ipc::Runtime rt;
    auto& w = rt.world();
    long ours = w.allreduce(static_cast<long>(w.rank() + 1));
    long theirs = 0, mine = w.rank() + 1;
    MPI_Allreduce(&mine, &theirs, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    long want = static_cast<long>(w.size()) * (w.size() + 1) / 2;
    if (ours != want || theirs != want) {
      std::fprintf(stderr, "rank %d: ipc's sum %ld, MPI's %ld, expected %ld\n", w.rank(), ours, theirs, want);
      bad = 1;
    }
    w.barrier();
    if (w.rank() == 0 && !bad) std::printf("mpi_mix: ipc and MPI agree on %d ranks\n", w.size());
  }
  MPI_Finalize();
  return bad;
}
