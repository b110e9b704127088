// Rendezvous messages whose receives are posted before they arrive: rank 0 sends
// windows of 64 while rank 1 is blocked outside the library (a named semaphore), so
// that rank 1's next poll matches a whole window and reads it from rank 0's memory at
// the end of that poll, together. A last window is received only after it arrived
// (each read as its receive is posted). Every byte is checked. shm_reads.sh counts the
// process_vm_readv calls (3 windows read together and one one by one: far fewer than
// one per message).
//   it_shm_reads  (2 ranks, IPC_SHM_CMA=1, IPC_PROGRESS_THREAD=0)
#include <fcntl.h>
#include <semaphore.h>
#include <unistd.h>

#include <ipc/ipc.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"

namespace {
constexpr int kWindow = 64;
constexpr int kWindows = 4;  // the last one received after it arrived

std::size_t size_of(int w, int i) { return 9000 + static_cast<std::size_t>((w * kWindow + i) * 12347) % 190000; }
std::uint8_t byte_of(int w, int i, std::size_t k) { return static_cast<std::uint8_t>(w * 131 + i * 29 + k * 7 + k / 4093); }
}  // namespace

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank();
  IT_CHECK(me, c.size() == 2, "run on 2 ranks, not %d", c.size());
  std::string name = me == 0 ? "/ipc-it-reads-" + std::to_string(::getpid()) : std::string();
  c.bcast(name, 0);
  sem_t* go = SEM_FAILED;
  if (me == 0) go = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 0);
  c.barrier();
  if (me == 1) go = ::sem_open(name.c_str(), 0);
  c.barrier();
  if (me == 0) ::sem_unlink(name.c_str());
  IT_CHECK(me, go != SEM_FAILED, "sem_open %s", name.c_str());

  for (int w = 0; w < kWindows; ++w) {
    const bool posted_first = w < kWindows - 1;
    std::vector<std::vector<std::uint8_t>> bufs(kWindow);
    std::vector<ipc::Request> reqs;
    if (me == 0) {
      for (int i = 0; i < kWindow; ++i) {
        bufs[i].resize(size_of(w, i));
        for (std::size_t k = 0; k < bufs[i].size(); ++k) bufs[i][k] = byte_of(w, i, k);
      }
      c.barrier();  // rank 1's receives are posted
      for (int i = 0; i < kWindow; ++i) reqs.push_back(c.isend(bufs[i], 1, ipc::Tag{i}));
      ::sem_post(go);  // every announcement is in rank 1's ring
      ipc::wait_all(reqs);
    } else {
      for (int i = 0; i < kWindow; ++i) bufs[i].resize(size_of(w, i));
      if (posted_first)
        for (int i = 0; i < kWindow; ++i) reqs.push_back(c.irecv(bufs[i], 0, ipc::Tag{i}));
      c.barrier();
      while (::sem_wait(go) != 0) {
      }
      if (!posted_first) {
        // Each announcement taken in as unexpected first (a probe polls), so that each
        // receive finds its message there and reads it at once.
        for (int i = 0; i < kWindow; ++i)
          while (!c.iprobe(0, ipc::Tag{i})) {
          }
        for (int i = 0; i < kWindow; ++i) reqs.push_back(c.irecv(bufs[i], 0, ipc::Tag{i}));
      }
      ipc::wait_all(reqs);
      for (int i = 0; i < kWindow; ++i) {
        IT_CHECK(me, bufs[i].size() == size_of(w, i), "window %d message %d: %zu bytes", w, i, bufs[i].size());
        for (std::size_t k = 0; k < bufs[i].size(); ++k)
          IT_CHECK(me, bufs[i][k] == byte_of(w, i, k), "window %d message %d byte %zu", w, i, k);
      }
    }
  }
  ::sem_close(go);
  c.barrier();
  return 0;
}
