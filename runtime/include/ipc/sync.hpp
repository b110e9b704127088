/// @file sync.hpp
/// Semaphores and mutexes of the ranks of a communicator, on one node or across nodes.
///
///     ipc::Semaphore slots(comm, 3);              // collective: 3 units
///     {
///       ipc::SemaphoreGuard g(slots);             // acquire ... release at scope end
///       use_the_licence();
///     }
///     ipc::Mutex m(comm);                         // one holder at a time
///     { std::lock_guard lk(m); append_to_the_log(); }
///
/// Made collectively by the ranks of a communicator. When they share a node, the state
/// lives in shared memory: acquiring a free unit is one atomic operation, no message;
/// a rank that waits polls briefly, then sleeps on a futex until a release. When they
/// span nodes (or IPC_TOOLS_HOME=always), the communicator's rank 0, the home, keeps
/// the state on a thread of its own: every operation of another rank is a message to
/// it and its answer (a few microseconds on one node, a network round trip across),
/// the home's own are direct calls (about 0.15 us).
///
/// Fair: blocking acquires are served in the order they started (a ticket each, or
/// the home's queue in the order its requests arrive). try_acquire() and
/// try_acquire_for() take only a unit no blocked rank is waiting for, so they never
/// overtake the queue.
///
/// A holder that dies (under ipcrun --keep-going) gives its units back: the rank that
/// gets one of them is told, as robust POSIX mutexes tell EOWNERDEAD: acquire() throws
/// ipc::OwnerLost after acquiring (the caller holds the unit and must release it), a
/// guard records it in owner_lost() instead. Waiters (or the home) look for dead
/// holders every 100 ms. When the home dies, every operation of the others fails with
/// ipc::PeerLost.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ipc/communicator.hpp"
#include "ipc/errors.hpp"

namespace ipc {

namespace detail {
struct SemState;
}

/// A counting semaphore of a communicator's ranks (see the top of this file).
class Semaphore {
 public:
  /// Collective over `comm`: `initial` units.
  Semaphore(const Communicator& comm, std::uint64_t initial);
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes a unit, waiting in turn.
  /// @throws ipc::OwnerLost after taking a unit a dead holder gave back (it is held).
  void acquire();
  /// Takes a free unit if there is one now.
  /// @throws ipc::OwnerLost as acquire() (when it returns true).
  bool try_acquire();
  /// Takes a free unit within `timeout`; false when none came.
  /// @throws ipc::OwnerLost as acquire().
  template <class Rep, class Period>
  bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return try_acquire_until(std::chrono::steady_clock::now() +
                             std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
  }
  bool try_acquire_until(std::chrono::steady_clock::time_point deadline);
  /// Gives `n` units back.
  /// @throws ipc::UsageError when this rank holds fewer than `n`.
  void release(std::uint64_t n = 1);
  /// Units free now (a snapshot).
  std::uint64_t available() const;
  /// Blocking acquires waiting now, in the job (a snapshot).
  std::uint64_t waiting() const;

 protected:
  std::unique_ptr<detail::SemState> s_;
};

/// One holder at a time among a communicator's ranks; std::lock_guard and
/// std::unique_lock work with it.
class Mutex : public Semaphore {
 public:
  explicit Mutex(const Communicator& comm) : Semaphore(comm, 1) {}
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_acquire_for(timeout);
  }
  void unlock() { release(); }
};

/// Holds a unit of a semaphore (or a mutex) for its scope; a unit inherited from a
/// dead holder is not an exception here but owner_lost().
class SemaphoreGuard {
 public:
  explicit SemaphoreGuard(Semaphore& s) : s_(s) {
    try {
      s_.acquire();
    } catch (const OwnerLost&) {
      owner_lost_ = true;
    }
  }
  ~SemaphoreGuard() { s_.release(); }
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;
  /// Whether the unit came from a holder that died (what it guarded may be half done).
  bool owner_lost() const { return owner_lost_; }

 private:
  Semaphore& s_;
  bool owner_lost_ = false;
};

}  // namespace ipc
