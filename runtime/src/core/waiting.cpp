#include "core/waiting.hpp"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "base/errors.hpp"
#include "base/params.hpp"

namespace ipc::detail {

WaitPolicy WaitPolicy::from_params(int local_size) {
  WaitPolicy p;
  p.spin = std::chrono::microseconds(base::param_int("IPC_WAIT_SPIN_US"));
  p.yield = std::chrono::microseconds(base::param_int("IPC_WAIT_YIELD_US"));
  p.group_yield = std::chrono::microseconds(base::param_int("IPC_WAIT_GROUP_YIELD_US"));
  std::string over = base::param("IPC_OVERSUBSCRIBED");
  if (over == "auto") {
    auto cpus = std::thread::hardware_concurrency();
    p.oversubscribed = cpus > 0 && static_cast<unsigned>(local_size) > cpus;
  } else {
    p.oversubscribed = base::param_bool("IPC_OVERSUBSCRIBED");
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  p.one_cpu = ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1;
  return p;
}

namespace {

long membarrier(int cmd) { return ::syscall(SYS_membarrier, cmd, 0u, 0); }

}  // namespace

bool asymmetric_barriers() {
  static const bool ok = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  return ok;
}

// The heavy side of the pairing with Engine::mark_done: after this, a completion that
// stored `done` before is visible here, and one that loads `sleepers_` after sees it.
int Sleeper::enter(const void* key) {
  int slot = -1;
  for (std::size_t i = 0; key && slot < 0 && i < kSlots; ++i) {
    const void* none = nullptr;
    if (keys_[i].compare_exchange_strong(none, key, std::memory_order_relaxed)) slot = static_cast<int>(i);
  }
  if (slot < 0) any_.fetch_add(1, std::memory_order_relaxed);
  // The key is stored before the count: a completer that sees the count sees the key.
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  if (!process_barrier()) std::atomic_thread_fence(std::memory_order_seq_cst);  // not seen once registered
  return slot;
}

bool process_barrier() {
  if (asymmetric_barriers()) return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return true;
}

Sleeper::Sleeper(const base::Doorbell& bell) : bell_(bell) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw Error(std::string("cannot create the wait set: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = bell_.fd();
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, bell_.fd(), &ev) != 0) {
    int e = errno;
    ::close(epfd_);
    throw Error(std::string("cannot watch the doorbell: ") + std::strerror(e));
  }
}

Sleeper::~Sleeper() {
  if (epfd_ >= 0) ::close(epfd_);
}

void Sleeper::watch(int fd) { fds_.push_back(fd); }

void Sleeper::begin_sleep() {
  std::lock_guard lk(mu_);
  if (in_sleep_++ > 0) return;
  for (int fd : fds_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

void Sleeper::end_sleep() {
  std::lock_guard lk(mu_);
  if (--in_sleep_ > 0) return;
  for (int fd : fds_) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

bool Sleeper::sleep(std::chrono::milliseconds max) {
  {
    std::unique_lock lk(mu_);
    if (polling_) {
      std::uint64_t gen = generation_;
      ++asleep_;
      bool woken = woke_.wait_for(lk, max, [&] { return generation_ != gen; });
      --asleep_;
      return woken;
    }
    polling_ = true;
    ++asleep_;
  }
  epoll_event evs[4];
  int n = ::epoll_wait(epfd_, evs, 4, static_cast<int>(max.count()));
  for (int i = 0; i < n; ++i)
    if (evs[i].data.fd == bell_.fd()) bell_.drain();
  {
    std::lock_guard lk(mu_);
    polling_ = false;
    --asleep_;
    ++generation_;
  }
  woke_.notify_all();  // the others look at their conditions again
  return n != 0;
}

void Sleeper::ring(bool always) {
  if (!always && sleepers_.load(std::memory_order_seq_cst) == 0) return;
  bell_.ring();
}

}  // namespace ipc::detail
