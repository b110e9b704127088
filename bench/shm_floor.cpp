// The floor of any runtime over shared memory: a ping-pong of two processes through
// one 64-byte line each way (a sequence number and the payload in it, busy-polled),
// with nothing else around the stores and loads. Two processes (this one forks),
// pinned to CPUs 0 and 1 where there are two, the same warm-up/iterations/median-of-
// repeats shape as harness.hpp. Sizes up to 56 bytes (one line's room beside the
// sequence number).
// Prints "pingpong_shmfloor,<bytes>,<half round trip us>,us" per size.
//   bench_shm_floor [--sizes 0,8] [--repeats 5]
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "floor.hpp"

namespace {

constexpr std::size_t kRoom = 56;

struct alignas(64) Line {
  std::atomic<std::uint64_t> seq{0};
  unsigned char payload[kRoom];
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(2);
}

// Stores the payload, then the sequence number (release): one line written.
void put(Line& l, std::uint64_t seq, const unsigned char* p, std::size_t n) {
  if (n) std::memcpy(l.payload, p, n);
  l.seq.store(seq, std::memory_order_release);
}
// Polls until the sequence number is there, then takes the payload.
void take(const Line& l, std::uint64_t seq, unsigned char* p, std::size_t n) {
  while (l.seq.load(std::memory_order_acquire) != seq) {
  }
  if (n) std::memcpy(p, l.payload, n);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{8};
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
      sizes = bench::floor::parse_sizes("bench_shm_floor", argv[++i], kRoom);
    } else if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_shm_floor [--sizes 0,8] [--repeats 5]\n");
      return 2;
    }
  }
  void* mem = ::mmap(nullptr, 2 * sizeof(Line), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  auto* to_child = new (mem) Line;
  auto* to_parent = new (static_cast<Line*>(mem) + 1) Line;
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  const bool parent = pid != 0;
  bench::floor::pin(parent ? 0 : 1);
  unsigned char buf[kRoom];
  std::memset(buf, 'x', sizeof buf);
  std::uint64_t seq = 0;
  for (std::size_t n : sizes) {
    double us = bench::floor::half_round_trip_us(20000, repeats, [&] {
      ++seq;
      if (parent) {
        put(*to_child, seq, buf, n);
        take(*to_parent, seq, buf, n);
      } else {
        take(*to_child, seq, buf, n);
        put(*to_parent, seq, buf, n);
      }
    });
    if (parent) std::printf("pingpong_shmfloor,%zu,%.4f,us\n", n, us);
  }
  if (!parent) _exit(0);
  int st = 0;
  if (::waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::fprintf(stderr, "bench_shm_floor: the child failed\n");
    return 1;
  }
  return 0;
}
