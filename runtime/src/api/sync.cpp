// Semaphores and mutexes of one node (the compiled half of sync.hpp).
//
// The state is a slice of a shared window on the node's first rank, 64-bit words:
//   [0] tickets    blocking acquires started (ticket t is served once t < limit)
//   [1] limit      initial units + units released (never decreases)
//   [2] seq        (low 32 bits) bumped at every release: the futex sleepers wait on
//   [3] lost       units given back by dead holders, not yet reported to a taker
//   [4] sleepers   ranks that may be asleep on seq (base/futex.hpp)
//   [5 + r]        node rank r: units held (low 32 bits), waiting with a ticket (bit 32)
// A blocking acquire takes ticket t and waits until t < limit; try_acquire takes a
// unit only while tickets < limit, by moving tickets on (so it never takes a unit a
// ticket holder waits for). A dead rank's word gives back what it held and the unit
// its pending ticket will be served (which nobody will take).
#include "ipc/sync.hpp"

#include <atomic>
#include <string>

#include "base/errors.hpp"
#include "base/futex.hpp"
#include "ipc/window.hpp"

namespace ipc::detail {

struct SemState {
  Communicator comm;
  Communicator node;
  SharedWindow<std::uint64_t> window;
  std::uint64_t* words = nullptr;
  int me = 0;      // node rank
  int size = 1;    // node ranks
  SemState(const Communicator& c, const Communicator& n)
      : comm(c), node(n), window(n, n.rank() == 0 ? 5 + static_cast<std::size_t>(n.size()) : 0) {
    words = window.slice(window.ranks_here().front()).data();
    me = n.rank();
    size = n.size();
  }
  std::atomic_ref<std::uint64_t> word(std::size_t i) const { return std::atomic_ref<std::uint64_t>(words[i]); }
  std::atomic_ref<std::uint64_t> tickets() const { return word(0); }
  std::atomic_ref<std::uint64_t> limit() const { return word(1); }
  std::atomic_ref<std::uint64_t> lost() const { return word(3); }
  std::atomic_ref<std::uint64_t> rank_word(int r) const { return word(5 + static_cast<std::size_t>(r)); }

  std::uint32_t* seq_word() const { return reinterpret_cast<std::uint32_t*>(&words[2]); }
  void wake() { base::futex_wake(seq_word(), &words[4]); }

  // Gives back what dead ranks held or were waiting for; true when it did.
  bool reclaim() {
    bool any = false;
    for (int r = 0; r < size; ++r) {
      if (r == me || rank_word(r).load() == 0) continue;
      if (!CommAccess::gone(node, r)) continue;
      std::uint64_t w = rank_word(r).exchange(0);
      std::uint64_t held = w & 0xffffffffu, waiting = w >> 32;
      if (held) lost().fetch_add(held);
      if (held + waiting) {
        limit().fetch_add(held + waiting);
        any = true;
      }
    }
    if (any) wake();
    return any;
  }

  // Waits until done() or the deadline, looking for dead holders between naps.
  template <class Done>
  bool wait(Done&& done, std::chrono::steady_clock::time_point deadline) {
    return base::futex_await(seq_word(), &words[4], done, deadline, [&] { reclaim(); });
  }

  // This rank holds one more unit; tells it when the unit came from a dead holder.
  void took(std::uint64_t from_waiting) {
    rank_word(me).fetch_add(1 - from_waiting);  // waiting -> holding in one step
    std::uint64_t l = lost().load();
    while (l > 0 && !lost().compare_exchange_weak(l, l - 1)) {
    }
    if (l > 0)
      throw OwnerLost("semaphore: this unit was held by a rank that died (what it guarded may be half done)", -1);
  }
};

}  // namespace ipc::detail

namespace ipc {

namespace {
Communicator one_node(const Communicator& comm) {
  Communicator node = comm.split_by_node();
  if (node.size() != comm.size())
    throw UsageError("Semaphore/Mutex: the communicator's " + std::to_string(comm.size()) +
                     " ranks are not all on one node (across nodes they are not built yet)");
  return node;
}
}  // namespace

Semaphore::Semaphore(const Communicator& comm, std::uint64_t initial)
    : s_(std::make_unique<detail::SemState>(comm, one_node(comm))) {
  if (s_->me == 0) s_->limit().store(initial);
  s_->window.fence();
}

Semaphore::~Semaphore() = default;

void Semaphore::acquire() {
  auto& s = *s_;
  s.rank_word(s.me).fetch_add(std::uint64_t{1} << 32);  // waiting with a ticket
  std::uint64_t t = s.tickets().fetch_add(1);
  s.wait([&] { return t < s.limit().load(); }, std::chrono::steady_clock::time_point::max());
  s.took(std::uint64_t{1} << 32);
}

bool Semaphore::try_acquire() {
  auto& s = *s_;
  std::uint64_t t = s.tickets().load();
  while (t < s.limit().load())
    if (s.tickets().compare_exchange_weak(t, t + 1)) {
      s.took(0);
      return true;
    }
  return false;
}

bool Semaphore::try_acquire_until(std::chrono::steady_clock::time_point deadline) {
  auto& s = *s_;
  bool got = false;
  // try_acquire's step inside the wait (a unit taken there is this rank's).
  s.wait(
      [&] {
        std::uint64_t t = s.tickets().load();
        while (!got && t < s.limit().load()) got = s.tickets().compare_exchange_weak(t, t + 1);
        return got;
      },
      deadline);
  if (got) s.took(0);
  return got;
}

void Semaphore::release(std::uint64_t n) {
  auto& s = *s_;
  std::uint64_t w = s.rank_word(s.me).load();
  if ((w & 0xffffffffu) < n)
    throw UsageError("Semaphore::release: this rank holds " + std::to_string(w & 0xffffffffu) + " units, not " +
                     std::to_string(n));
  s.rank_word(s.me).fetch_sub(n);
  s.limit().fetch_add(n);
  s.wake();
}

std::uint64_t Semaphore::available() const {
  std::uint64_t l = s_->limit().load(), t = s_->tickets().load();
  return l > t ? l - t : 0;
}

}  // namespace ipc
