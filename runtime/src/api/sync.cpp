// Semaphores and mutexes (the compiled half of sync.hpp).
//
// On one node the state is a slice of a shared window on the node's first rank, 64-bit
// words:
//   [0] tickets    blocking acquires started (ticket t is served once t < limit)
//   [1] limit      initial units + units released (never decreases)
//   [2] seq        (low 32 bits) bumped at every release: the futex sleepers wait on
//   [3] lost       units given back by dead holders, not yet reported to a taker
//   [4] sleepers   ranks that may be asleep on seq (base/futex.hpp)
//   [8 + 8r]       node rank r: units held (low 32 bits), waiting with a ticket (bit 32),
//                  each on a cache line of its own (a holder's updates of its word do not
//                  disturb the ranks polling limit)
// A blocking acquire takes ticket t and waits until t < limit; try_acquire takes a
// unit only while tickets < limit, by moving tickets on (so it never takes a unit a
// ticket holder waits for). A dead rank's word gives back what it held and the unit
// its pending ticket will be served (which nobody will take).
//
// Across nodes the home rank's queue (api/home.hpp) keeps the free units, each rank's
// held units and a FIFO of waiting requests; every operation is a request and its
// answer (a release too, so that it is seen by anything the releaser does after it).
#include "ipc/sync.hpp"

#include <atomic>
#include <deque>
#include <string>

#include "api/home.hpp"
#include "base/errors.hpp"
#include "base/futex.hpp"
#include "ipc/window.hpp"
#include "wire/bytes.hpp"

namespace ipc::detail {

struct LocalSem {
  Communicator node;
  SharedWindow<std::uint64_t> window;
  std::uint64_t* words = nullptr;
  int me = 0;      // node rank
  int size = 1;    // node ranks
  LocalSem(const Communicator& n, std::uint64_t initial)
      : node(n), window(n, n.rank() == 0 ? 8 + 8 * static_cast<std::size_t>(n.size()) : 0) {
    words = window.slice(window.ranks_here().front()).data();
    me = n.rank();
    size = n.size();
    if (me == 0) limit().store(initial);
    window.fence();
  }
  std::atomic_ref<std::uint64_t> word(std::size_t i) const { return std::atomic_ref<std::uint64_t>(words[i]); }
  std::atomic_ref<std::uint64_t> tickets() const { return word(0); }
  std::atomic_ref<std::uint64_t> limit() const { return word(1); }
  std::atomic_ref<std::uint64_t> lost() const { return word(3); }
  std::atomic_ref<std::uint64_t> rank_word(int r) const { return word(8 + 8 * static_cast<std::size_t>(r)); }

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


// The home's state of a semaphore whose ranks span nodes.
class SemHome final : public HomeState {
 public:
  enum Op : std::uint8_t { kAcquire, kTry, kRelease, kAvailable, kWaiting };
  enum Answer : std::uint8_t { kGranted, kGrantedLost, kRefused };

  SemHome(std::uint64_t initial, int size) : free_(initial), held_(static_cast<std::size_t>(size), 0) {}

  void request(Home& home, int rank, std::uint32_t id, std::uint8_t op, std::span<const std::byte> p) override {
    switch (op) {
      case kAcquire:
        queue_.push_back({rank, id});
        serve(home);
        break;
      case kTry:
        if (queue_.empty() && free_ > 0)
          grant(home, rank, id);
        else
          reply(home, rank, id, kRefused);
        break;
      case kRelease: {
        auto n = p.size() >= 8 ? wire::get_int<std::uint64_t>(p.data()) : 0;
        auto& h = held_[static_cast<std::size_t>(rank)];
        h -= std::min(h, n);
        free_ += n;
        serve(home);
        reply(home, rank, id, kGranted);  // done: visible to whatever this rank does next
        break;
      }
      case kAvailable:
      case kWaiting: {
        std::vector<std::byte> out;
        wire::put_int(out, op == kAvailable ? free_ : static_cast<std::uint64_t>(queue_.size()));
        home.answer(rank, id, out);
        break;
      }
      default:
        break;
    }
  }

  void withdraw(Home& home, int rank, std::uint32_t id) override {
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (it->rank == rank && it->id == id) {
        queue_.erase(it);
        reply(home, rank, id, kRefused);
        return;
      }
  }

  void gone(Home& home, int rank) override {
    auto& h = held_[static_cast<std::size_t>(rank)];
    free_ += h;
    lost_ += h;
    h = 0;
    std::erase_if(queue_, [rank](const Waiting& w) { return w.rank == rank; });
    serve(home);
  }

 private:
  struct Waiting {
    int rank;
    std::uint32_t id;
  };
  static void reply(Home& home, int rank, std::uint32_t id, Answer a) {
    auto b = static_cast<std::byte>(a);
    home.answer(rank, id, std::span<const std::byte>(&b, 1));
  }
  void grant(Home& home, int rank, std::uint32_t id) {
    --free_;
    ++held_[static_cast<std::size_t>(rank)];
    bool lost = lost_ > 0;
    if (lost) --lost_;
    reply(home, rank, id, lost ? kGrantedLost : kGranted);
  }
  void serve(Home& home) {
    while (free_ > 0 && !queue_.empty()) {
      Waiting w = queue_.front();
      queue_.pop_front();
      grant(home, w.rank, w.id);
    }
  }

  std::uint64_t free_;
  std::uint64_t lost_ = 0;
  std::vector<std::uint64_t> held_;
  std::deque<Waiting> queue_;
};

// A semaphore through its home: every operation is a message to it.
struct RemoteSem {
  Home home;
  std::atomic<std::uint64_t> held{0};  // this rank's units (for release's check)
  RemoteSem(const Communicator& comm, std::uint64_t initial)
      : home(comm, comm.rank() == 0 ? std::make_unique<SemHome>(initial, comm.size()) : nullptr, "semaphore") {}

  // A count the home keeps (kAvailable, kWaiting).
  std::uint64_t count(SemHome::Op op) {
    auto a = home.ask(op, {});
    return a.size() >= 8 ? wire::get_int<std::uint64_t>(a.data()) : 0;
  }
  // Asks for a unit; true when granted.
  bool take(SemHome::Op op, std::chrono::steady_clock::time_point deadline) {
    auto a = home.ask(op, {}, deadline);
    auto answer = a.empty() ? SemHome::kRefused : static_cast<SemHome::Answer>(a[0]);
    if (answer == SemHome::kRefused) return false;
    held.fetch_add(1);
    if (answer == SemHome::kGrantedLost)
      throw OwnerLost("semaphore: this unit was held by a rank that died (what it guarded may be half done)", -1);
    return true;
  }
};

struct SemState {
  std::unique_ptr<LocalSem> local;
  std::unique_ptr<RemoteSem> remote;
};

}  // namespace ipc::detail

namespace ipc {

Semaphore::Semaphore(const Communicator& comm, std::uint64_t initial) : s_(std::make_unique<detail::SemState>()) {
  if (auto node = detail::tools_node(comm))
    s_->local = std::make_unique<detail::LocalSem>(*node, initial);
  else
    s_->remote = std::make_unique<detail::RemoteSem>(comm, initial);
}

Semaphore::~Semaphore() = default;

void Semaphore::acquire() {
  if (s_->remote) {
    s_->remote->take(detail::SemHome::kAcquire, std::chrono::steady_clock::time_point::max());
    return;
  }
  auto& s = *s_->local;
  s.rank_word(s.me).fetch_add(std::uint64_t{1} << 32);  // waiting with a ticket
  std::uint64_t t = s.tickets().fetch_add(1);
  s.wait([&] { return t < s.limit().load(); }, std::chrono::steady_clock::time_point::max());
  s.took(std::uint64_t{1} << 32);
}

bool Semaphore::try_acquire() {
  if (s_->remote) return s_->remote->take(detail::SemHome::kTry, std::chrono::steady_clock::time_point::max());
  auto& s = *s_->local;
  std::uint64_t t = s.tickets().load();
  while (t < s.limit().load())
    if (s.tickets().compare_exchange_weak(t, t + 1)) {
      s.took(0);
      return true;
    }
  return false;
}

bool Semaphore::try_acquire_until(std::chrono::steady_clock::time_point deadline) {
  if (s_->remote) return s_->remote->take(detail::SemHome::kAcquire, deadline);
  auto& s = *s_->local;
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
  auto too_many = [n](std::uint64_t held) {
    return UsageError("Semaphore::release: this rank holds " + std::to_string(held) + " units, not " +
                      std::to_string(n));
  };
  if (s_->remote) {
    auto& r = *s_->remote;
    std::uint64_t h = r.held.load();
    do {
      if (h < n) throw too_many(h);
    } while (!r.held.compare_exchange_weak(h, h - n));
    std::vector<std::byte> p;
    wire::put_int(p, n);
    r.home.ask(detail::SemHome::kRelease, p);
    return;
  }
  auto& s = *s_->local;
  std::uint64_t w = s.rank_word(s.me).load();
  if ((w & 0xffffffffu) < n) throw too_many(w & 0xffffffffu);
  s.rank_word(s.me).fetch_sub(n);
  s.limit().fetch_add(n);
  s.wake();
}

std::uint64_t Semaphore::available() const {
  if (s_->remote) return s_->remote->count(detail::SemHome::kAvailable);
  std::uint64_t l = s_->local->limit().load(), t = s_->local->tickets().load();
  return l > t ? l - t : 0;
}

std::uint64_t Semaphore::waiting() const {
  if (s_->remote) return s_->remote->count(detail::SemHome::kWaiting);
  std::uint64_t l = s_->local->limit().load(), t = s_->local->tickets().load();
  return t > l ? t - l : 0;
}

}  // namespace ipc
