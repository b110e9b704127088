// The same harness over raw MPI (built against Open MPI).
#include <mpi.h>

#include "harness.hpp"

namespace {

class MpiBackend {
 public:
  static constexpr bool collectives = true;
  static constexpr bool tools = true;
  using Req = MPI_Request;

  MpiBackend() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  void send(const char* p, std::size_t n, int peer) {
    MPI_Send(p, static_cast<int>(n), MPI_BYTE, peer, 0, MPI_COMM_WORLD);
  }
  void recv(char* p, std::size_t n, int peer) {
    MPI_Recv(p, static_cast<int>(n), MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  Req isend(const char* p, std::size_t n, int peer) {
    Req r;
    MPI_Isend(p, static_cast<int>(n), MPI_BYTE, peer, 0, MPI_COMM_WORLD, &r);
    return r;
  }
  Req irecv(char* p, std::size_t n, int peer) {
    Req r;
    MPI_Irecv(p, static_cast<int>(n), MPI_BYTE, peer, 0, MPI_COMM_WORLD, &r);
    return r;
  }
  void wait_all(std::vector<Req>& r) { MPI_Waitall(static_cast<int>(r.size()), r.data(), MPI_STATUSES_IGNORE); }
  void sync() { MPI_Barrier(MPI_COMM_WORLD); }
  void barrier() { MPI_Barrier(MPI_COMM_WORLD); }
  void allreduce(const double* in, double* out, std::size_t n) {
    MPI_Allreduce(in, out, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  void allreduce_chars(const char* in, char* out, std::size_t n) {
    MPI_Allreduce(in, out, static_cast<int>(n), MPI_CHAR, MPI_SUM, MPI_COMM_WORLD);
  }
  void bcast(char* p, std::size_t n, int root) { MPI_Bcast(p, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD); }
  void allgather(const char* in, std::size_t n, char* out) {
    MPI_Allgather(in, static_cast<int>(n), MPI_BYTE, out, static_cast<int>(n), MPI_BYTE, MPI_COMM_WORLD);
  }
  void alltoall(const char* in, std::size_t n, char* out) {
    MPI_Alltoall(in, static_cast<int>(n), MPI_BYTE, out, static_cast<int>(n), MPI_BYTE, MPI_COMM_WORLD);
  }
  void scatter(const char* in, std::size_t n, char* out, int root) {
    MPI_Scatter(in, static_cast<int>(n), MPI_BYTE, out, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void reduce_scatter(const double* in, double* out, std::size_t n) {
    MPI_Reduce_scatter_block(in, out, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  Req iallreduce(double* inout, std::size_t n) {
    Req r;
    MPI_Iallreduce(MPI_IN_PLACE, inout, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r);
    return r;
  }
  void wait(Req& r) { MPI_Wait(&r, MPI_STATUS_IGNORE); }
  // The counterparts of a mutex and a window: an exclusive lock of rank 0's part of a
  // shared window (MPI_Win_allocate_shared: the ranks must share a node), its fence.
  void tools_begin() {
    void* base = nullptr;
    MPI_Win_allocate_shared(rank_ == 0 ? static_cast<MPI_Aint>(sizeof(long)) : 0, sizeof(long), MPI_INFO_NULL,
                            MPI_COMM_WORLD, &base, &win_);
    MPI_Win_fence(0, win_);
  }
  void tools_end() { MPI_Win_free(&win_); }
  void lock() { MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win_); }
  void unlock() { MPI_Win_unlock(0, win_); }
  void fence() { MPI_Win_fence(0, win_); }

 private:
  MPI_Win win_ = MPI_WIN_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    MpiBackend b;
    bench::run(b, bench::parse(argc, argv));
  }
  MPI_Finalize();
  return 0;
}
