// The farm's adaptive number of tasks in flight with one worker (FarmOptions::in_flight
// 0), kept by rank 0 per worker.
//
// 2 to start with (the next task waits at the worker while it runs one). When the
// worker says it had to wait for a batch (its results' flag: the tasks are shorter
// than a message's way there and back, or rank 0 waited for a CPU), as many as make
// kHeldWork of its work by its own clock (the last batch's time per task), at most
// kMaxInFlight: long tasks stay at 2, one per message, and the balance at the end of
// the list is kept within a couple of milliseconds however the worker came to wait;
// trivial ones go in batches of 2,048 (within 32 KiB of tasks) from the second batch
// on. Batches of 128 left 8 ranks on 2 CPUs at 0.37-0.61 us per task, most of it the
// ranks' turns on the CPUs per message; doubling from 2 up to the limit cost a dozen
// such turns at the start of every farm.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace ipc::detail {

class FarmPace {
 public:
  static constexpr int kMaxInFlight = 4096;
  static constexpr std::uint64_t kHeldWork = 2'000'000;  // ns

  int limit() const { return limit_; }
  /// The worker waited for its last batch.
  void starved() { limit_ = cap(); }
  /// The worker's last batch: `tasks` took `ns` of its time.
  void timed(std::uint64_t ns, std::size_t tasks) {
    if (tasks == 0) return;
    task_ns_ = std::max<std::uint64_t>(1, ns / tasks);
    limit_ = std::min(limit_, cap());
  }

 private:
  int cap() const {
    if (task_ns_ == 0) return kMaxInFlight;
    return static_cast<int>(std::clamp<std::uint64_t>(kHeldWork / task_ns_, 2, kMaxInFlight));
  }
  int limit_ = 2;
  std::uint64_t task_ns_ = 0;  // the last batch's work per task (0: none timed yet)
};

}  // namespace ipc::detail
