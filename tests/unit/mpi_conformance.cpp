// The transport conformance suite (transport_conformance_test.cpp) for the mpi
// transport, which needs one process per rank: run under `mpirun -n 4`. Each process
// opens its rank's transport through the registry, as the runtime does under an
// engine, and the checks are those of the suite: frames of every size from 0 B to
// 64 MiB, with heads of every size, arrive in order and intact; many small frames both
// ways keep their order; completions come once (at once for a copied payload);
// re-entrant sends from sink callbacks; a sink's refusal drops the peer once; every
// pair at once.
//   mpirun -n 4 mpi_conformance
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "transport/registry.hpp"
#include "transport_harness.hpp"

using namespace harness;

namespace {

int g_rank = 0, g_failures = 0;

#define EXPECT(cond, ...)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ++g_failures;                                                                         \
      std::fprintf(stderr, "rank %d: %s:%d: %s: ", g_rank, __FILE__, __LINE__, #cond);      \
      std::fprintf(stderr, __VA_ARGS__);                                                    \
      std::fprintf(stderr, "\n");                                                           \
    }                                                                                       \
  } while (0)

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : -1;
}

struct Rank {
  int me, n;
  std::unique_ptr<Transport> t;
  std::vector<Endpoint*> ep;
  Collect sink;

  Rank() {
    Config cfg;
    cfg.rank = me = env_int("OMPI_COMM_WORLD_RANK");
    cfg.size = n = env_int("OMPI_COMM_WORLD_SIZE");
    cfg.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
    cfg.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
    cfg.job = "mpiconf";
    cfg.launcher = ipc::base::Launcher::engine;
    auto opened = open(cfg, {"mpi"});
    if (opened.size() != 1) {
      std::fprintf(stderr, "rank %d: the mpi transport did not open under mpirun\n", me);
      std::exit(2);
    }
    t = std::move(opened[0]);
    ep.resize(static_cast<std::size_t>(n), nullptr);
    for (int r = 0; r < n; ++r) {
      PeerCard c;
      c.rank = r;
      c.node = "n";
      c.cards["mpi"] = "mpiconf:" + std::to_string(r);
      if (r != me) ep[static_cast<std::size_t>(r)] = &t->connect(c);
    }
  }
  void send(int to, const std::vector<std::byte>& h, const void* p, std::size_t len, Completion* done) {
    ep[static_cast<std::size_t>(to)]->send(ipc::wire::Frame{h, p, len}, done);
  }
  template <class Cond>
  bool pump(Cond cond) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!cond()) {
      if (std::chrono::steady_clock::now() > end) return false;
      t->poll(sink);
    }
    return true;
  }
  // Between the checks (MPI's own, apart from the transport's communicator).
  void barrier() {
    pump([&] { return t->idle(); });
    MPI_Barrier(MPI_COMM_WORLD);
    sink.got.clear();
  }
};

void every_size(Rank& r) {
  EverySize frames;
  auto& [sizes, payloads, heads] = frames;
  Done done;
  if (r.me == 0)
    for (std::size_t i = 0; i < sizes.size(); ++i) r.send(1, heads[i], payloads[i].data(), sizes[i], &done);
  if (r.me == 0) {
    EXPECT(r.pump([&] { return done.count == static_cast<int>(sizes.size()); }), "%d of %zu completions", done.count,
           sizes.size());
    EXPECT(done.failed == 0, "%d failed completions", done.failed);
    EXPECT(r.t->idle(), "not idle after every completion");
  }
  if (r.me == 1) {
    EXPECT(r.pump([&] { return r.sink.got.size() == sizes.size(); }), "%zu of %zu frames", r.sink.got.size(),
           sizes.size());
    for (std::size_t i = 0; i < sizes.size() && i < r.sink.got.size(); ++i) {
      auto& m = r.sink.got[i];
      EXPECT(m.peer == 0 && m.head == heads[i] && m.data == payloads[i], "frame %zu (%zu B) changed", i, sizes[i]);
    }
    r.sink.got.clear();
  }
}

void many_small_both_ways(Rank& r) {
  if (r.me > 1) return;
  const std::uint32_t count = 20000;
  std::uint64_t word = 7;
  int other = 1 - r.me;
  for (std::uint32_t i = 0; i < count; ++i) {
    r.send(other, head(i), &word, i % 3 == 0 ? 0 : 8, nullptr);
    if (i % 64 == 0) r.t->poll(r.sink);
  }
  EXPECT(r.pump([&] { return r.sink.got.size() == count && r.t->idle(); }), "%zu of %u small frames", r.sink.got.size(),
         count);
  for (std::uint32_t i = 0; i < r.sink.got.size(); ++i)
    if (tag_of(r.sink.got[i].head) != i) {
      EXPECT(false, "small frame %u came as %u", i, tag_of(r.sink.got[i].head));
      break;
    }
  r.sink.got.clear();
}

// Rank 1 answers every frame from inside its sink callback; rank 0 gets every answer.
void reentrant(Rank& r) {
  if (r.me > 1) return;
  const int count = 300;
  std::vector<std::byte> big = pattern(100000, 3);
  if (r.me == 1) {
    int answered = 0;
    r.sink.on_done = [&](const Collect::Msg& m) {
      r.send(0, m.head, m.data.data(), m.data.size(), nullptr);  // copied or sent before the Msg goes
      ++answered;
    };
    r.pump([&] { return answered == count; });
    r.pump([&] { return r.t->idle(); });
    r.sink.on_done = nullptr;
  } else {
    Done done;
    for (int i = 0; i < count; ++i)
      r.send(1, head(static_cast<std::uint32_t>(i)), big.data(), i % 2 ? big.size() : 8, &done);
    EXPECT(r.pump([&] { return r.sink.got.size() == static_cast<std::size_t>(count); }), "%zu of %d answers",
           r.sink.got.size(), count);
    for (std::size_t i = 0; i < r.sink.got.size(); ++i)
      EXPECT(tag_of(r.sink.got[i].head) == i && r.sink.got[i].data.size() == (i % 2 ? big.size() : 8),
             "answer %zu", i);
  }
  r.sink.got.clear();
}

void all_pairs(Rank& r) {
  const std::uint32_t per = 200;
  std::vector<std::byte> data = pattern(70000, static_cast<std::uint32_t>(r.me));
  for (std::uint32_t i = 0; i < per; ++i)
    for (int to = 0; to < r.n; ++to)
      if (to != r.me) r.send(to, head(i), data.data(), i % 4 == 0 ? data.size() : 16, nullptr);
  auto expected = static_cast<std::size_t>(per) * static_cast<std::size_t>(r.n - 1);
  EXPECT(r.pump([&] { return r.sink.got.size() == expected && r.t->idle(); }), "%zu of %zu frames", r.sink.got.size(),
         expected);
  for (int from = 0; from < r.n; ++from) {
    auto got = r.sink.from(from);
    for (std::uint32_t i = 0; i < got.size(); ++i)
      if (tag_of(got[i].head) != i) {
        EXPECT(false, "frame %u from rank %d came as %u", i, from, tag_of(got[i].head));
        break;
      }
  }
  r.sink.got.clear();
}

// Last: rank 1 refuses a frame of rank 0's; it reports rank 0 lost, once, and delivers
// nothing more from it.
void refusal(Rank& r) {
  if (r.me == 1) {
    r.sink.refuse = "a test refuses this head";
    r.pump([&] { return !r.sink.lost.empty(); });
    EXPECT(r.sink.lost.size() == 1 && r.sink.lost[0].first == 0, "%zu losses reported", r.sink.lost.size());
    EXPECT(r.sink.lost[0].second.find("a test refuses this head") != std::string::npos, "why: %s",
           r.sink.lost[0].second.c_str());
  }
  if (r.me == 0) {
    Done done;
    r.send(1, head(1), nullptr, 0, &done);
    r.send(1, head(2), nullptr, 0, &done);
    r.pump([&] { return done.count == 2; });
  }
}

}  // namespace

int main() {
  Rank r;
  g_rank = r.me;
  if (r.n < 2) {
    std::fprintf(stderr, "mpi_conformance: run it under mpirun -n 2 or more\n");
    return 2;
  }
  every_size(r);
  r.barrier();
  many_small_both_ways(r);
  r.barrier();
  reentrant(r);
  r.barrier();
  all_pairs(r);
  r.barrier();
  refusal(r);
  r.barrier();  // nothing in flight when the transport finalizes MPI
  if (r.me == 0 && g_failures == 0) std::printf("mpi conformance: %d ranks ok\n", r.n);
  return g_failures == 0 ? 0 : 1;
}
