// pi: a Monte Carlo estimate of pi, the grid way. Rank 0 hands out batches of samples
// to whichever worker asks next (a small task farm), workers return their hit counts,
// and rank 0 adds them up.
//   ipcrun -n 4 ./pi [total samples]
#include <ipc/ipc.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace {

constexpr ipc::Tag kWork{1}, kResult{2};

struct Batch {
  std::uint64_t seed;
  std::uint64_t samples;  // 0: no more work
};

struct Result {
  std::uint64_t hits;
  std::uint64_t samples;
};

std::uint64_t count_hits(const Batch& b) {
  std::mt19937_64 gen(b.seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < b.samples; ++i) {
    double x = u(gen), y = u(gen);
    hits += (x * x + y * y <= 1.0);
  }
  return hits;
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& comm = rt.world();
  const std::uint64_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 40'000'000;
  const std::uint64_t batch = 1'000'000;

  if (comm.rank() == 0) {
    std::uint64_t handed = 0, hits = 0, done = 0, seed = 12345;
    int workers = comm.size() - 1;
    if (workers == 0) {  // a job of one rank does all the work itself
      for (; handed < total; handed += batch) hits += count_hits({seed++, std::min(batch, total - handed)});
      done = total;
    } else {
      int active = workers;
      while (active > 0) {
        ipc::Status st;
        auto r = comm.recv<Result>(ipc::any_source, kResult, &st);  // a request for work, with the last result
        hits += r.hits;
        done += r.samples;
        Batch next{seed++, std::min(batch, total - handed)};
        handed += next.samples;
        if (next.samples == 0) --active;
        comm.send(next, st.source, kWork);
      }
    }
    double pi = 4.0 * static_cast<double>(hits) / static_cast<double>(done);
    std::printf("pi ~= %.6f from %llu samples on %d ranks (error %.2e)\n", pi,
                static_cast<unsigned long long>(done), comm.size(), std::fabs(pi - M_PI));
  } else {
    Result r{0, 0};
    for (;;) {
      comm.send(r, 0, kResult);
      auto b = comm.recv<Batch>(0, kWork);
      if (b.samples == 0) break;
      r = Result{count_hits(b), b.samples};
    }
  }
  return 0;
}
