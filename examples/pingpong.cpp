// pingpong: half round-trip latency between rank 0 and rank 1 for a few sizes.
//   ipcrun -n 2 ./pingpong [iterations]
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& comm = rt.world();
  if (comm.size() < 2) {
    if (comm.rank() == 0) std::fprintf(stderr, "pingpong needs 2 ranks: ipcrun -n 2 %s\n", argv[0]);
    return 2;
  }
  int iters = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (comm.rank() == 0) std::printf("%10s %12s %12s\n", "bytes", "latency_us", "MB/s");
  for (std::size_t bytes : {std::size_t{8}, std::size_t{1024}, std::size_t{65536}, std::size_t{1} << 20}) {
    std::vector<char> buf(bytes, 'x');
    int n = bytes >= (1 << 20) ? std::max(iters / 20, 10) : iters;
    if (comm.rank() > 1) continue;
    auto once = [&] {
      if (comm.rank() == 0) {
        comm.send(buf, 1);
        comm.recv(buf, 1);
      } else {
        comm.recv(buf, 0);
        comm.send(buf, 0);
      }
    };
    for (int i = 0; i < n / 10 + 1; ++i) once();  // warm-up
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) once();
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n / 2;
    if (comm.rank() == 0) std::printf("%10zu %12.2f %12.1f\n", bytes, us, bytes / us);
  }
  return 0;
}
