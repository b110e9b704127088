// One measurement code for every back end (OSU micro-benchmark style): warm-up, many
// iterations, the median of repeats. A back end provides:
//
//   int rank(), size();
//   void send(const char*, size_t, int peer);  void recv(char*, size_t, int peer);
//   Req isend(const char*, size_t, int peer);  Req irecv(char*, size_t, int peer);
//   void wait_all(std::vector<Req>&);
//   void sync();                      // a barrier used between measurements (not timed)
//   static constexpr bool collectives; // then also: barrier(), allreduce(double*, n),
//                                      // allreduce_chars(const char*, char*, n) (sum),
//                                      // bcast(char*, n, root), allgather(...), alltoall(...),
//                                      // scatter(...), reduce_scatter(...),
//                                      // Req iallreduce(double*, n), wait(Req&)
//   static constexpr bool tools;      // then also: tools_begin(), tools_end() (collective),
//                                      // lock(), unlock() (one lock of the job), fence()
//
// Results go to stdout on rank 0 as CSV lines: benchmark,bytes,value,unit.
#pragma once

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct Config {
  std::vector<std::size_t> sizes;
  int repeats = 5;
  double scale = 1.0;  // iteration count multiplier (smoke: small)
  std::vector<std::string> only;  // benchmarks to run; empty: all
  double blocked_seconds = 0;     // > 0: measure the CPU of a blocked receive
  bool want(const std::string& b) const {
    return only.empty() || std::find(only.begin(), only.end(), b) != only.end();
  }
};

inline double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline int iterations(std::size_t bytes, double scale, int small = 2000) {
  int n = bytes <= 8192 ? small : bytes <= (1u << 16) ? small / 2 : bytes <= (1u << 20) ? 100 : 20;
  return std::max(2, static_cast<int>(n * scale));
}

inline void emit(const char* bench, std::size_t bytes, double value, const char* unit) {
  std::printf("%s,%zu,%.4f,%s\n", bench, bytes, value, unit);
  std::fflush(stdout);
}

// A buffer as OSU's: page-aligned, its own (send and receive buffers are separate),
// filled with `fill`.
struct Buffer {
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  /// Bytes past the page's start where send and receive buffers begin (--offset S[,R];
  /// 0: page-aligned).
  static inline std::size_t send_offset = 0, recv_offset = 0;
  enum Role { send, recv };
  std::unique_ptr<char, Free> p;
  std::size_t at = 0;
  Buffer(std::size_t n, char fill, Role role = send) : at(role == send ? send_offset : recv_offset) {
    std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::size_t len = (std::max<std::size_t>(n, 1) + at + page - 1) / page * page;
    p.reset(static_cast<char*>(std::aligned_alloc(page, len)));
    if (!p) std::abort();
    std::memset(p.get(), fill, len);
  }
  char* data() const { return p.get() + at; }
  /// A benchmark's row: `name`, name_atB for both kinds of buffer B bytes past a page,
  /// name_atS_R for send buffers S and receive buffers R bytes past one.
  static std::string named(const char* name) {
    if (send_offset == recv_offset)
      return send_offset ? std::string(name) + "_at" + std::to_string(send_offset) : std::string(name);
    return std::string(name) + "_at" + std::to_string(send_offset) + "_" + std::to_string(recv_offset);
  }
};

// Half round trip between ranks 0 and 1 (others wait).
template <class B>
void pingpong(B& b, const Config& cfg) {
  for (std::size_t bytes : cfg.sizes) {
    Buffer sbuf(bytes, 'a'), rbuf(bytes, 'b', Buffer::recv);
    int iters = iterations(bytes, cfg.scale);
    std::vector<double> reps;
    for (int r = -1; r < cfg.repeats; ++r) {  // r = -1: warm-up
      b.sync();
      double t0 = now_us();
      if (b.rank() == 0) {
        for (int i = 0; i < iters; ++i) {
          b.send(sbuf.data(), bytes, 1);
          b.recv(rbuf.data(), bytes, 1);
        }
      } else if (b.rank() == 1) {
        for (int i = 0; i < iters; ++i) {
          b.recv(rbuf.data(), bytes, 0);
          b.send(sbuf.data(), bytes, 0);
        }
      }
      if (r >= 0) reps.push_back((now_us() - t0) / iters / 2);
    }
    if (b.rank() == 0) emit(Buffer::named("pingpong").c_str(), bytes, median(reps), "us");
  }
}

// Window of 64 messages from rank 0 to rank 1, then a short acknowledgement.
template <class B>
void bandwidth(B& b, const Config& cfg, bool both_ways) {
  const int window = 64;
  for (std::size_t bytes : cfg.sizes) {
    if (bytes == 0) continue;
    Buffer sbuf(bytes, 's'), rbuf(bytes, 'r', Buffer::recv);
    char ack = 0;
    int iters = std::max(2, iterations(bytes, cfg.scale, 200) / 4);
    std::vector<double> reps;
    // One array of requests for the whole run, as OSU's benchmarks keep theirs: the
    // measurement is the runtime's, not the growth of a vector per window.
    std::vector<typename B::Req> reqs;
    reqs.reserve(2 * window);
    for (int r = -1; r < cfg.repeats; ++r) {
      b.sync();
      double t0 = now_us();
      for (int i = 0; i < iters && b.rank() < 2; ++i) {
        reqs.clear();
        int peer = 1 - b.rank();
        if (both_ways || b.rank() == 0)
          for (int w = 0; w < window; ++w) reqs.push_back(b.isend(sbuf.data(), bytes, peer));
        if (both_ways || b.rank() == 1)
          for (int w = 0; w < window; ++w) reqs.push_back(b.irecv(rbuf.data(), bytes, peer));
        b.wait_all(reqs);
        if (b.rank() == 0)
          b.recv(&ack, 1, 1);
        else
          b.send(&ack, 1, 0);
      }
      double us = now_us() - t0;
      if (r >= 0) reps.push_back(static_cast<double>(bytes) * window * iters * (both_ways ? 2 : 1) / us);
    }
    if (b.rank() == 0) emit(Buffer::named(both_ways ? "bibw" : "bw").c_str(), bytes, median(reps), "MB/s");
  }
}

// Collectives over all ranks: the time of one call, median over repeats of the
// slowest rank's average (taken as rank 0's after a barrier, as OSU does).
template <class B, class F>
void time_collective(B& b, const Config& cfg, const char* name, std::size_t bytes, F&& op) {
  int iters = iterations(bytes, cfg.scale, 1000);
  std::vector<double> reps;
  for (int r = -1; r < cfg.repeats; ++r) {
    b.sync();
    double t0 = now_us();
    for (int i = 0; i < iters; ++i) op();
    b.sync();
    if (r >= 0) reps.push_back((now_us() - t0) / iters);
  }
  if (b.rank() == 0) emit(name, bytes, median(reps), "us");
}

// How much of a non-blocking allreduce hides behind computation (OSU's overlap): t_comm
// is iallreduce + wait alone, t_comp a compute loop of that length (no library call),
// t_total both (start, compute, wait); overlap = 100 (1 - (t_total - t_comp) / t_comm),
// the median over repeats, in percent (100: entirely hidden).
template <class B>
void overlap(B& b, const Config& cfg, std::size_t n) {
  std::vector<double> data(n, 1.0);
  int iters = std::max(iterations(n * sizeof(double), cfg.scale, 1000) / 4, 5);
  auto comm_alone = [&] {
    b.sync();
    double t0 = now_us();
    for (int i = 0; i < iters; ++i) {
      auto r = b.iallreduce(data.data(), n);
      b.wait(r);
    }
    return (now_us() - t0) / iters;
  };
  auto compute = [](double us) {  // busy, as a program's own work would be
    double until = now_us() + us;
    volatile double x = 1;
    while (now_us() < until) x = x * 1.0000001 + 1e-9;
  };
  std::vector<double> reps;
  for (int r = -1; r < cfg.repeats; ++r) {
    double t_comm = comm_alone();
    b.sync();
    double t0 = now_us();
    for (int i = 0; i < iters; ++i) compute(t_comm);
    double t_comp = (now_us() - t0) / iters;
    b.sync();
    t0 = now_us();
    for (int i = 0; i < iters; ++i) {
      auto q = b.iallreduce(data.data(), n);
      compute(t_comm);
      b.wait(q);
    }
    double t_total = (now_us() - t0) / iters;
    double pct = 100.0 * (1.0 - (t_total - t_comp) / t_comm);
    if (r >= 0) reps.push_back(std::clamp(pct, 0.0, 100.0));
  }
  if (b.rank() == 0) emit("iallreduce_overlap", n * sizeof(double), median(reps), "%");
}

// OSU's way (osu_allreduce, osu_bcast): every call timed alone between barriers, on
// chars (allreduce: sum), the average over the ranks of each rank's mean; rows
// osu_allreduce, osu_bcast, beside published OSU figures.
template <class B, class F>
void time_collective_osu(B& b, const Config& cfg, const char* name, std::size_t bytes, F&& op) {
  int iters = iterations(bytes, cfg.scale, 1000);
  std::vector<double> reps;
  for (int r = -1; r < cfg.repeats; ++r) {
    b.sync();
    double total = 0;
    for (int i = 0; i < iters; ++i) {
      double t0 = now_us();
      op();
      total += now_us() - t0;
      b.barrier();
    }
    double mean = total / iters, sum = 0;
    b.allreduce(&mean, &sum, 1);
    if (r >= 0) reps.push_back(sum / b.size());
  }
  if (b.rank() == 0) emit(name, bytes, median(reps), "us");
}

template <class B>
void collectives(B& b, const Config& cfg) {
  if constexpr (B::collectives) {
    for (std::size_t bytes : cfg.sizes) {
      if (bytes == 0) continue;
      Buffer in(bytes, 1), out(bytes, 0);
      if (cfg.want("osu_allreduce"))
        time_collective_osu(b, cfg, "osu_allreduce", bytes, [&] { b.allreduce_chars(in.data(), out.data(), bytes); });
      if (cfg.want("osu_bcast")) time_collective_osu(b, cfg, "osu_bcast", bytes, [&] { b.bcast(in.data(), bytes, 0); });
    }
    if (cfg.want("barrier")) time_collective(b, cfg, "barrier", 0, [&] { b.barrier(); });
    for (std::size_t bytes : cfg.sizes) {
      std::size_t n = std::max<std::size_t>(bytes / sizeof(double), 1);
      std::vector<double> in(n, 1.0), out(n);
      std::vector<char> buf(std::max<std::size_t>(bytes, 1)), all(std::max<std::size_t>(bytes, 1) * b.size());
      std::vector<char> all2(all.size());
      if (cfg.want("allreduce"))
        time_collective(b, cfg, "allreduce", n * sizeof(double), [&] { b.allreduce(in.data(), out.data(), n); });
      if (cfg.want("bcast")) time_collective(b, cfg, "bcast", bytes, [&] { b.bcast(buf.data(), bytes, 0); });
      if (cfg.want("allgather"))
        time_collective(b, cfg, "allgather", bytes, [&] { b.allgather(buf.data(), bytes, all.data()); });
      if (cfg.want("alltoall"))
        time_collective(b, cfg, "alltoall", bytes, [&] { b.alltoall(all.data(), bytes, all2.data()); });
      if (cfg.want("scatter"))
        time_collective(b, cfg, "scatter", bytes, [&] { b.scatter(all.data(), bytes, buf.data(), 0); });
      if (cfg.want("reduce_scatter")) {
        std::vector<double> blocks(n * static_cast<std::size_t>(b.size()), 1.0), mine(n);
        time_collective(b, cfg, "reduce_scatter", n * sizeof(double),
                        [&] { b.reduce_scatter(blocks.data(), mine.data(), n); });
      }
      if (cfg.want("iallreduce_overlap")) overlap(b, cfg, n);
    }
  }
}

// CPU used by rank 1 while it blocks in a receive that rank 0 satisfies after
// `seconds` (all threads of the process, from getrusage), in percent of one core.
template <class B>
void blocked(B& b, const Config& cfg, double seconds) {
  char v = 0;
  b.sync();
  if (b.rank() == 0) {
    double until = now_us() + seconds * 1e6;
    while (now_us() < until) ::usleep(10000);
    b.send(&v, 1, 1);
    double pct = 0;
    b.recv(reinterpret_cast<char*>(&pct), sizeof pct, 1);
    emit("blocked_cpu", 0, pct, "%");
  } else if (b.rank() == 1) {
    double c0 = cpu_seconds(), t0 = now_us();
    b.recv(&v, 1, 0);
    double pct = 100.0 * (cpu_seconds() - c0) / ((now_us() - t0) / 1e6);
    b.send(reinterpret_cast<const char*>(&pct), sizeof pct, 0);
  }
  (void)cfg;
}

// The classic tools: one lock of the job, uncontended (rank 0 alone) and handed back
// and forth between ranks 0 and 1 (time per acquire + release); a window's fence (all
// ranks). Rows in us, bytes 0.
template <class B>
void tools(B& b, const Config& cfg) {
  if constexpr (B::tools) {
    if (!cfg.want("mutex_uncontended") && !cfg.want("mutex_handoff") && !cfg.want("window_fence")) return;
    b.tools_begin();
    int iters = iterations(8, cfg.scale, 20000);
    // `ranks` ranks run body() `per_rank` times each; the row is the time per one of `ops`.
    auto rows = [&](const char* name, int ranks, int per_rank, int ops, auto&& body) {
      std::vector<double> reps;
      for (int r = -1; r < cfg.repeats; ++r) {
        b.sync();
        double t0 = now_us();
        if (b.rank() < ranks)
          for (int i = 0; i < per_rank; ++i) body();
        b.sync();
        if (r >= 0) reps.push_back((now_us() - t0) / ops);
      }
      if (b.rank() == 0) emit(name, 0, median(reps), "us");
    };
    if (cfg.want("mutex_uncontended")) rows("mutex_uncontended", 1, iters, iters, [&] {
        b.lock();
        b.unlock();
      });
    if (cfg.want("mutex_handoff") && b.size() >= 2) rows("mutex_handoff", 2, iters / 4, iters / 2, [&] {
        b.lock();
        b.unlock();
      });
    if (cfg.want("window_fence")) rows("window_fence", b.size(), iters / 10, iters / 10, [&] { b.fence(); });
    b.tools_end();
  }
}

// Memory (asked for by name only): every rank exchanges 8 B and 64 KiB messages with
// its two neighbours in a ring (the pairs a stencil uses), then reports its peak
// resident size (VmHWM, the mean over ranks: memory_rank, MiB) and rank 0 what /dev/shm
// holds now (shm_used, MiB: bench/compare subtracts what it held before the job).
template <class B>
void memory(B& b, const Config& cfg) {
  int n = b.size(), me = b.rank();
  if (n >= 2) {
    Buffer sbuf(1 << 16, 's'), left(1 << 16, 0), right(1 << 16, 0);
    for (std::size_t bytes : {std::size_t{8}, std::size_t{1} << 16})
      for (int i = 0; i < 10; ++i) {
        std::vector<typename B::Req> reqs;
        reqs.push_back(b.irecv(left.data(), bytes, (me + n - 1) % n));
        reqs.push_back(b.irecv(right.data(), bytes, (me + 1) % n));
        reqs.push_back(b.isend(sbuf.data(), bytes, (me + 1) % n));
        reqs.push_back(b.isend(sbuf.data(), bytes, (me + n - 1) % n));
        b.wait_all(reqs);
      }
  }
  b.sync();
  double hwm_kib = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) hwm_kib = std::strtod(line.c_str() + 6, nullptr);
  double sum = 0;
  b.allreduce(&hwm_kib, &sum, 1);
  if (me == 0) {
    struct statvfs v {};
    double used = ::statvfs("/dev/shm", &v) == 0 ? static_cast<double>(v.f_blocks - v.f_bfree) * v.f_frsize : 0;
    emit("memory_rank", 0, sum / n / 1024, "MiB");
    emit("shm_used", 0, used / (1 << 20), "MiB");
  }
  b.sync();
  (void)cfg;
}

template <class B>
void run(B& b, const Config& cfg) {
  if (b.size() >= 2 && !cfg.sizes.empty()) {
    if (cfg.want("pingpong")) pingpong(b, cfg);
    if (cfg.want("bw")) bandwidth(b, cfg, false);
    if (cfg.want("bibw")) bandwidth(b, cfg, true);
  }
  collectives(b, cfg);
  tools(b, cfg);
  if constexpr (B::collectives)
    if (!cfg.only.empty() && cfg.want("memory")) memory(b, cfg);
  if (b.size() >= 2 && cfg.blocked_seconds > 0) blocked(b, cfg, cfg.blocked_seconds);
  b.sync();
}

// Command line: [--sizes a,b,c] [--repeats N] [--scale X] [--only b1,b2] [--blocked S]
// [--offset B | S,R] (the ping-pong's and bandwidth's buffers start B bytes past a page's
// start; S,R: send buffers S bytes, receive buffers R bytes past one).
// A malformed or unknown option is one line on stderr naming it, and exit status 2.
[[noreturn]] inline void usage_error(const std::string& what) {
  std::fprintf(stderr, "bench: %s\n", what.c_str());
  std::exit(2);
}

inline Config parse(int argc, char** argv) {
  Config c;
  auto split = [](const char* s) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = s;; ++p) {
      if (*p == ',' || *p == 0) {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
        if (!*p) break;
      } else {
        cur += *p;
      }
    }
    return out;
  };
  auto count = [](const std::string& opt, const std::string& v, unsigned long long max) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || n > max)
      usage_error(opt + ": '" + v + "' is not a whole number from 0 to " + std::to_string(max));
    return n;
  };
  auto real = [](const std::string& opt, const std::string& v, bool zero_ok) {
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x > 0 || (zero_ok && x == 0)) || x > 1e6)
      usage_error(opt + ": '" + v + "' is not a number " + (zero_ok ? "from 0" : "above 0") + " to 1e6");
    return x;
  };
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage_error("option " + k + " needs a value");
    std::string v = argv[i + 1];
    if (k == "--sizes") {
      for (auto& item : split(v.c_str())) c.sizes.push_back(count(k, item, 1ull << 34));
      if (c.sizes.empty()) usage_error("--sizes: '" + v + "' names no size");
    } else if (k == "--repeats") {
      c.repeats = static_cast<int>(count(k, v, 100000));
      if (c.repeats < 1) usage_error("--repeats: '" + v + "' is not a whole number from 1 to 100000");
    } else if (k == "--scale") {
      c.scale = real(k, v, false);
    } else if (k == "--only") {
      c.only = split(v.c_str());
    } else if (k == "--blocked") {
      c.blocked_seconds = real(k, v, true);
    } else if (k == "--offset") {
      auto parts = split(v.c_str());
      if (parts.empty() || parts.size() > 2 || v.back() == ',') usage_error("--offset: '" + v + "' is not B or S,R");
      Buffer::send_offset = static_cast<std::size_t>(count(k, parts[0], 4095));
      Buffer::recv_offset = parts.size() == 2 ? static_cast<std::size_t>(count(k, parts[1], 4095)) : Buffer::send_offset;
    } else {
      usage_error("unknown option '" + k + "' (--sizes, --repeats, --scale, --only, --blocked, --offset)");
    }
  }
  return c;
}

}  // namespace bench
