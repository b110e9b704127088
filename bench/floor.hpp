// What the two floor benchmarks (tcp_floor.cpp, shm_floor.cpp) share: their sizes
// argument, pinning the two processes, and harness.hpp's shape of measurement.
#pragma once

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench::floor {

/// Pins this process to the `nth` CPU it may run on, where it may run on two or more.
inline void pin(int nth) {
  cpu_set_t all;
  if (::sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2) return;
  int seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &all) || seen++ != nth) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    ::sched_setaffinity(0, sizeof one, &one);
    return;
  }
}

/// "0,8,64": sizes up to `max`; anything else ends `tool` with a message naming it.
inline std::vector<std::size_t> parse_sizes(const char* tool, const char* s, std::size_t max) {
  std::vector<std::size_t> out;
  std::string text(s);
  std::size_t at = 0;
  for (;;) {
    auto comma = text.find(',', at);
    std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    unsigned long long v = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v > max) {
      std::fprintf(stderr, "%s: --sizes: '%s' is not a size from 0 to %zu\n", tool, item.c_str(), max);
      std::exit(2);
    }
    out.push_back(static_cast<std::size_t>(v));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

/// Half a round trip in microseconds: `iters` calls of `round_trip` per repeat, after
/// one repeat of warm-up, the median of `repeats`.
template <class F>
double half_round_trip_us(int iters, int repeats, F&& round_trip) {
  std::vector<double> reps;
  repeats = std::max(1, repeats);
  for (int r = -1; r < repeats; ++r) {  // r = -1: warm-up
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) round_trip();
    std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - t0;
    if (r >= 0) reps.push_back(us.count() / iters / 2);
  }
  std::sort(reps.begin(), reps.end());
  return reps[reps.size() / 2];
}

}  // namespace bench::floor
