// Lanes: work that runs on threads of the runtime, in order per lane.
//
// The non-blocking collectives run here: each communicator's on a lane of its own
// (its non-blocking collective context), one after the other in the order the
// program started them, as every rank starts them in the same order. Lanes of
// different communicators run apart, so a rank that starts A's and then B's while
// another starts B's and then A's does not deadlock. A lane's thread is made on its
// first task and sleeps between tasks; all end with the runtime (stop()).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ipc::detail {

class Lanes {
 public:
  Lanes() = default;
  ~Lanes() { stop(); }
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

  /// Runs `task` on lane `lane` after the tasks posted to it before.
  void post(std::uint32_t lane, std::function<void()> task) {
    std::lock_guard lk(mu_);
    auto& l = lanes_[lane];
    if (!l) {
      l = std::make_unique<Lane>();
      l->thread = std::thread([this, p = l.get()] { run(*p); });
    }
    l->tasks.push_back(std::move(task));
    l->cv.notify_one();
  }

  /// Drops the tasks not started yet; returns the lanes whose task is still running
  /// (the caller makes them fail, then stop() joins them).
  std::vector<std::uint32_t> abandon() {
    std::vector<std::uint32_t> running;
    std::lock_guard lk(mu_);
    for (auto& [k, l] : lanes_) {
      l->tasks.clear();
      if (l->busy) running.push_back(k);
    }
    return running;
  }

  /// Runs what is queued to its end, then ends every lane's thread. The tasks end by
  /// themselves: every rank starts the same collectives, and a lost rank fails them.
  void stop() {
    std::map<std::uint32_t, std::unique_ptr<Lane>> lanes;
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      for (auto& [k, l] : lanes_) l->cv.notify_one();
      lanes.swap(lanes_);
    }
    for (auto& [k, l] : lanes)
      if (l->thread.joinable()) l->thread.join();
  }

 private:
  struct Lane {
    std::thread thread;
    std::deque<std::function<void()>> tasks;
    std::condition_variable cv;
    bool busy = false;
  };

  void run(Lane& l) {
    std::unique_lock lk(mu_);
    for (;;) {
      l.cv.wait(lk, [&] { return !l.tasks.empty() || stopping_; });
      if (l.tasks.empty()) return;
      auto task = std::move(l.tasks.front());
      l.tasks.pop_front();
      l.busy = true;
      lk.unlock();
      task();  // tasks catch what they throw (they fail their request)
      task = nullptr;
      lk.lock();
      l.busy = false;
    }
  }

  std::mutex mu_;
  bool stopping_ = false;
  std::map<std::uint32_t, std::unique_ptr<Lane>> lanes_;
};

}  // namespace ipc::detail
