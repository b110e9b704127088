// Engine: progress, waiting and the progress thread.
#include <sched.h>

#include <chrono>

#include "core/engine.hpp"
#include "base/errors.hpp"
#include "base/load.hpp"

namespace ipc::detail {
namespace {

// While the program keeps calling into the library (a ping-pong loop), its own waits
// make progress; the progress thread takes over only after this much quiet.
constexpr auto kQuiet = std::chrono::milliseconds(2);

// Polls before a blocked call first reads the clock (reading it costs more than a
// poll on some virtual machines).
constexpr int kPollsBeforeClock = 64;
// A sched_yield() that takes this long gave the CPU to a process that computes (see
// block_until_impl); waiters then sleep rather than yield for kNoYieldFor.
constexpr auto kLongYield = std::chrono::microseconds(500);
constexpr auto kNoYieldFor = std::chrono::nanoseconds(std::chrono::milliseconds(50));
// When the job's ranks outnumber the CPUs, the first such period is this short, and
// each long yield that follows doubles it (up to kNoYieldFor); a quick one halves it.
constexpr auto kNoYieldFirst = std::chrono::nanoseconds(std::chrono::milliseconds(4));
// Meanwhile, how often a waiter looks whether that process is still there.
constexpr auto kLoadLookEvery = std::chrono::nanoseconds(std::chrono::milliseconds(1));

// Counts a thread as waiting in the library for as long as it lives, and counts waits
// (the progress thread compares the count across its naps to see activity).
struct WaiterScope {
  std::atomic<int>& n;
  std::atomic<std::uint64_t>& waits;
  WaiterScope(std::atomic<int>& c, std::atomic<std::uint64_t>& w) : n(c), waits(w) {
    n.fetch_add(1, std::memory_order_seq_cst);
  }
  ~WaiterScope() {
    waits.store(waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    n.fetch_sub(1, std::memory_order_seq_cst);
  }
};

}  // namespace

// Says what this thread waits for, while it lives.
struct NoteWhat {
  const char* saved;
  explicit NoteWhat(const char* what) : saved(op_note().what) { op_note().what = what; }
  ~NoteWhat() { op_note().what = saved; }
};

// Registers this thread as blocked (with what its note says) for the report.
struct BlockedScope {
  Engine& e;
  OpNote* note;
  explicit BlockedScope(Engine& eng) : e(eng), note(&op_note()) { e.note_blocked(note, true); }
  ~BlockedScope() { e.note_blocked(note, false); }
};

bool Engine::progress_locked() {
  struct Depth {
    int& d;
    explicit Depth(int& v) : d(v) { ++d; }
    ~Depth() { --d; }
  } depth(poll_depth_);
  bool any = false;
  for (auto* t : transports_) any |= t->poll(*this);
  if (poll_depth_ == 1 && !reads_.empty()) {
    flush_reads();
    any = true;
  }
  return any;
}

void Engine::block_until(Condition done) { block_until_impl(done); }

// The loop of every blocked call; a template so that a request's wait (the common
// case) calls its predicate directly. A short wait (the first polls) does not count
// itself as a waiter: the progress thread stays away anyway while the program keeps
// calling (start_send/start_recv note activity), and the count costs two atomic
// read-modify-writes on the way of every message.
bool Engine::wait_until(Condition done, std::chrono::steady_clock::time_point deadline, SleepGuard* guard,
                        unsigned poll_every, const void* key, std::uint64_t wants) {
  return block_until_impl(done, deadline, guard, poll_every, key, wants);
}

namespace {
thread_local bool t_yield_first = false;
thread_local bool t_polls_for_peers = false;
// Until then (steady clock, ns) this thread sleeps instead of yielding: one of its
// sched_yield() calls came back only after another process's whole time slice
// (block_until_impl). Per thread: what one thread of a rank learns of its yields says
// nothing of another's.
thread_local std::int64_t t_yield_useless_until = 0;
// The length of the next such period when the job's ranks outnumber the CPUs (ns).
thread_local std::int64_t t_no_yield_period = kNoYieldFirst.count();
// When this thread last looked whether a CPU is to spare (steady clock, ns).
thread_local std::int64_t t_load_looked = 0;
}  // namespace

void Engine::yield_first_on_this_thread() { t_yield_first = true; }
void Engine::poll_for_peers_on_this_thread() { t_polls_for_peers = true; }

// Rings wanted during a waiter's poll (signal_done) happen when it ends, outside the lock.
struct Engine::RingAfterUnlock {
  Engine& e;
  explicit RingAfterUnlock(Engine& eng) : e(eng) { ++defer_rings_; }
  ~RingAfterUnlock() {
    if (--defer_rings_ == 0 && ring_due_) {
      ring_due_ = false;
      e.sleeper_.ring();  // if the thread still sleeps (it may have seen its flag meanwhile)
    }
  }
};

template <class Done>
bool Engine::block_until_impl(Done&& done, std::chrono::steady_clock::time_point deadline, SleepGuard* guard,
                              unsigned poll_every, const void* key, std::uint64_t wants) {
  if (done()) return true;
  using clock = std::chrono::steady_clock;
  const WaitPolicy& pol = opt_.wait;
  woke_other_ = false;
  const bool yield_first = pol.oversubscribed || t_yield_first;
  const auto yield_for = guard && guard->in_group && pol.oversubscribed ? pol.group_yield : pol.yield;
  const bool bounded = deadline != clock::time_point::max();
  // A wait whose condition needs the poll (a request: only a poll completes it) takes
  // the lock, queueing behind another thread's poll. One whose condition shared
  // memory makes true polls only for others' sake and skips when the lock is taken:
  // on an oversubscribed node the holder may be descheduled, and waiting for it
  // costs a collective's hand-off (a 4-rank allreduce on 2 cores, 3-8%).
  const bool needs_poll = poll_every == 1;
  auto poll_done = [&] {
    RingAfterUnlock ring_after(*this);  // destroyed after the lock is let go of
    if (needs_poll) {
      std::lock_guard lk(mu_);
      progress_locked();
    } else if (mu_.try_lock()) {
      std::lock_guard lk(mu_, std::adopt_lock);
      progress_locked();
    } else if (pol.one_cpu) {
      // The holder shares this CPU, so it is off it (a thread this one woke took the
      // CPU from it inside the lock): let it finish rather than spin for nothing.
      ::sched_yield();
    }
    return done();
  };
  // While spinning, the transports are polled on every `poll_every`-th round only; the
  // condition is looked at on every one.
  unsigned countdown = poll_every;
  auto spin_done = [&] {
    if (--countdown == 0) {
      countdown = poll_every;
      return poll_done();
    }
    return done();
  };
  // Counted as polling while it polls (Transport::polling) when another thread of this
  // rank sleeps, or always when this thread is a service; when it stops (it sleeps or
  // leaves) it polls once more if a thread still sleeps, so that a message sent by a
  // peer that saw the count is never left for a nap.
  struct Polling {
    Engine& e;
    bool on = false;
    void set(bool v) {
      if (v == on) return;
      on = v;
      bool again = false;
      for (auto* t : e.transports_) again |= t->polling(v ? 1 : -1);
      if (again) {
        std::lock_guard lk(e.mu_);
        e.progress_locked();
      }
    }
    ~Polling() {
      try {
        set(false);
      } catch (...) {  // a poll reports through the sink: not reached
      }
    }
  } polling{*this};
  // Counted from the first poll in a service's waits, and whenever another thread of
  // this rank sleeps (peers would otherwise ring it, for this thread's messages).
  if (t_polls_for_peers || sleeping_waiters_.load(std::memory_order_relaxed) > 0) polling.set(true);
  // The first polls without a pause between them: a pause costs about as much as a
  // poll on recent x86 cores (about 140 cycles), and an answer usually comes within
  // these polls (a small ping-pong's half round trip went from 0.23 to 0.20 us).
  for (int i = 0; i < kPollsBeforeClock && !yield_first && !bounded; ++i) {
    if (spin_done()) return true;
  }
  WaiterScope scope(waiters_, wait_count_);
  BlockedScope blocked(*this);
  // Only while a thread of this rank sleeps: otherwise nobody is rung anyway, and the
  // count is two atomic updates of a line that every sender reads.
  if (sleeping_waiters_.load(std::memory_order_relaxed) > 0) polling.set(true);
  auto start = clock::now();
  for (bool spinning = !yield_first;;) {
    if (spinning ? spin_done() : poll_done()) return true;
    auto now = clock::now();
    if (now >= deadline) return false;
    // Another thread of this rank went to sleep while this one polls: counted from now
    // on, so that peers do not ring (and wake) that thread for this one's messages.
    if (!polling.on && sleeping_waiters_.load(std::memory_order_relaxed) > 0) polling.set(true);
    auto elapsed = now - start;
    // On one CPU, a waiter that has completed what another thread of its rank waits
    // for (the request an RPC server waits on), or woken a sleeping one, sleeps at once
    // instead of spinning or yielding, so that the other one runs. Yielding does not do: the scheduler often
    // hands the CPU straight back to a yielder whose sibling has run more, and the
    // waiter kept it for whole time slices while the server waited (RPC calls of
    // 0.7-10 ms, dozens in a row).
    const bool nap_now =
        pol.one_cpu && !pol.oversubscribed && (woke_other_ || handoffs_.load(std::memory_order_relaxed) > 0);
    woke_other_ = false;
    spinning = !yield_first && !nap_now && elapsed < pol.spin;
    if (spinning) {
      cpu_relax();
      continue;
    }
    // Sleeping instead of yielding (a yield went to a process that computes): once no
    // thread waits for a CPU any more, yield again. A sleep costs a wake-up, which on
    // an idle virtual CPU takes 0.1-10 ms, and two ranks that sleep in turn pay one per
    // exchange: a stream of 4-byte messages, in windows of 64, ran 100 times slower for
    // the 50 ms after another process had used the CPU for 5 ms. Not when the job's
    // own ranks outnumber the CPUs: the process that took the CPU is then mostly one
    // of them, and the count of runnable threads, low while most of them sleep, would
    // send them back to yielding to each other (a launch of 64 ranks on 2 CPUs took a
    // quarter longer).
    if (!nap_now && !pol.oversubscribed && now.time_since_epoch().count() < t_yield_useless_until &&
        now.time_since_epoch().count() >= t_load_looked + kLoadLookEvery.count()) {
      t_load_looked = now.time_since_epoch().count();
      if (base::cpus_to_spare()) t_yield_useless_until = 0;
    }
    if (!nap_now && elapsed < pol.spin + yield_for && now.time_since_epoch().count() >= t_yield_useless_until) {
      ::sched_yield();
      // What another thread or rank did while this one was off the CPU (a node
      // group's flag, a request another thread completed) is seen before polling.
      if (done()) return true;
      // A yield to ranks that poll and yield too comes back within microseconds. One
      // that took a whole time slice went to a process that computes (a build beside
      // the job): yielding then hands it the CPU at every poll, and a collective whose
      // every step waits for one rank's turn crawls (8 ranks on 2 cores beside one
      // busy process: 75 times slower). Sleep instead, for a while: a rank woken by
      // its doorbell runs at once.
      // When the job's own ranks outnumber the CPUs, a long yield is often one of
      // them computing (every rank of a starting job touches its buffers at once: the
      // first collective's rows ran 10-60 times slow, asleep for the 50 ms after):
      // the period starts at 4 ms and grows while yields keep going to a process
      // that computes.
      auto back = clock::now();
      if (back - now > kLongYield) {
        std::int64_t period = kNoYieldFor.count();
        if (pol.oversubscribed) {
          period = t_no_yield_period;
          t_no_yield_period = std::min<std::int64_t>(2 * period, kNoYieldFor.count());
        }
        t_yield_useless_until = back.time_since_epoch().count() + period;
      } else if (pol.oversubscribed && t_no_yield_period > kNoYieldFirst.count()) {
        t_no_yield_period /= 2;
      }
      continue;
    }
    // After a wake-up, poll busily again: more usually follows. After a timeout,
    // sleep again at once (re-spinning every 100 ms would cost 2% of a core), but
    // first look for peers that died silently (every 100 ms, however short the naps).
    auto nap = nap_;
    if (bounded)
      nap = std::min(nap, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    bool counted = polling.on;
    polling.set(false);
    bool woken = sleep_once(std::function<bool()>(std::ref(done)), nap, true, guard, key, wants);
    polling.set(counted);
    maybe_dump();
    if (woken) {
      // A thread waiting for one completion (keyed) that is woken and finds it not
      // done was woken for another thread's message: it polls once (the loop's next
      // round: that completes the other's request) and sleeps again, instead of
      // spinning on the CPU the other thread needs.
      if (!key) {
        start = clock::now();
        spinning = !yield_first;
      }
    } else {
      std::lock_guard lk(mu_);
      if (auto t = clock::now(); t - naps_checked_ >= std::chrono::milliseconds(100)) {
        naps_checked_ = t;
        for (auto* tr : transports_) tr->check_peers(*this);
      }
    }
  }
}

bool Engine::sleep_once(const std::function<bool()>& done, std::chrono::milliseconds max, bool waiter,
                        SleepGuard* guard, const void* key, std::uint64_t wants) {
  bool woken = true;
  int slot = waiter ? sleeper_.enter(key) : -1;  // completions ring the doorbell for waiters only
  std::size_t armed = 0;
  // Whatever happens (done() may throw: probe), every armed transport is disarmed.
  struct Disarm {
    Engine& e;
    std::size_t& armed;
    bool waiter;
    int slot;
    std::uint64_t wants;
    SleepGuard* guard = nullptr;  // set once armed
    ~Disarm() {
      // Without the lock: a thread that wakes while the program polls would otherwise
      // spin for it on the program's core.
      if (guard) guard->disarm();
      for (std::size_t i = 0; i < armed; ++i) e.transports_[i]->disarm_sleep(wants);
      if (waiter) e.sleeper_.leave(slot);
      e.sleeper_.end_sleep();
    }
  } disarm{*this, armed, waiter, slot, wants};
  sleeper_.begin_sleep();  // before arming: an arrival after the check is then seen
  bool ok = true;
  {
    std::lock_guard lk(mu_);  // arming may change a transport's epoll set (a thread goes
                              // to sleep when the program is quiet: the lock is free)
    while (ok && armed < transports_.size()) ok = transports_[armed++]->arm_sleep(wants);
  }
  if (ok && guard) {
    disarm.guard = guard;
    ok = guard->arm();
  }
  if (ok && !done()) {
    if (waiter) sleeping_waiters_.fetch_add(1);
    woken = sleeper_.sleep(max);
    if (waiter) {
      std::lock_guard lk(pt_mu_);  // under the park mutex: the notification cannot fall between check and wait
      sleeping_waiters_.fetch_sub(1);
      pt_cv_.notify_one();  // the progress thread may be parked for long: re-evaluate
    }
  }
  return woken;
}

Status Engine::finish_slow(RequestState& r) {
  if (!r.finished) {
    r.finished = true;
    if (!r.error && r.to && r.to->finish) {
      try {
        r.to->finish();
      } catch (...) {
        r.error = receive_error(std::current_exception(), r);
      }
    }
  }
  if (r.error) std::rethrow_exception(r.error);
  if (r.group) [[unlikely]] {  // the sender (or destination) as a rank of the communicator
    Status st = r.status;
    if (st.source >= 0 && st.source < opt_.size) st.source = r.group->local[static_cast<std::size_t>(st.source)];
    return st;
  }
  return r.status;
}

Status Engine::wait(RequestState& r) {
  if (!r.done.load(std::memory_order_acquire)) {
    OpNote& note = op_note();
    const RequestState* outer = note.req;
    note.req = &r;
    struct Restore {
      OpNote& n;
      const RequestState* r;
      ~Restore() { n.req = r; }
    } restore{note, outer};
    struct Handed {
      Engine& e;
      RequestState& r;
      ~Handed() {
        if (!r.done.load(std::memory_order_acquire)) {
          // Left by an exception: no thread waits for it any more, so a later
          // completion is no hand-off (it would never be taken off the count).
          std::lock_guard lk(e.mu_);
          r.waiter.store(nullptr, std::memory_order_relaxed);
        }
        // (Looked at again: it may have completed, handed over, before the lock.)
        if (r.done.load(std::memory_order_acquire) && r.handed) {
          r.handed = false;
          e.handoffs_.fetch_sub(1, std::memory_order_relaxed);
        }
      }
    } handed{*this, r};
    r.waiter.store(&woke_other_, std::memory_order_relaxed);
    // A receive ends by a frame of its context only (proto::concerns); what else waits
    // for the rank to act (a ready-to-send to answer) concerns every sleeper.
    block_until_impl([&] { return r.done.load(std::memory_order_seq_cst); }, std::chrono::steady_clock::time_point::max(),
                     nullptr, 1, &r.done,
                     r.kind == RequestState::Kind::recv ? proto::concern_of(r.comm) : wire::kConcernsAll);
  }
  return finish(r);
}

std::optional<Status> Engine::test(RequestState& r) {
  if (!r.done.load(std::memory_order_acquire)) {
    std::lock_guard lk(mu_);
    progress_locked();
    // A program that only polls must learn of a peer that died silently as one that
    // waits does (the waiter looks after its naps): every 256th pending test reads
    // the clock, and every 100 ms the transports look for dead peers.
    if (!r.done.load(std::memory_order_acquire) && (++pending_tests_ & 255) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - peers_checked_ >= std::chrono::milliseconds(100)) {
        peers_checked_ = now;
        for (auto* t : transports_) t->check_peers(*this);
      }
    }
  }
  if (!r.done.load(std::memory_order_acquire)) return std::nullopt;
  return finish(r);
}

std::size_t Engine::wait_any(const std::vector<RequestState*>& rs) {
  std::size_t found = rs.size();
  auto check = [&] {
    for (std::size_t i = 0; i < rs.size(); ++i)
      if (rs[i] && rs[i]->done.load(std::memory_order_acquire)) {
        found = i;
        return true;
      }
    return false;
  };
  bool any = false;
  for (auto* r : rs) any |= r != nullptr;
  if (!any) throw UsageError("wait_any: no active request");
  NoteWhat note("wait_any (for one of several requests)");
  block_until(check);
  return found;
}

void Engine::flush() {
  NoteWhat note("ending: sending what is still queued");
  block_until([&] {
    std::lock_guard lk(mu_);
    for (auto* t : transports_)
      if (!t->idle()) return false;
    return true;
  });
}

void Engine::shutdown() {
  // Leaving without finish_async() (an error): a non-blocking collective still running
  // fails here and at its peers, as if this rank were lost; those not started are dropped.
  for (std::uint32_t lane : lanes_.abandon()) revoke(lane, opt_.rank);
  lanes_.stop();
  if (progress_.joinable()) {
    stop_.store(true);
    sleeper_.ring(true);
    {
      std::lock_guard lk(pt_mu_);
      pt_cv_.notify_all();
    }
    progress_.join();
  }
  std::lock_guard lk(mu_);
  if (shut_) return;
  shut_ = true;
  // What is still pending ends now, with an error: a request's handle may outlive the
  // runtime, and one that is done never looks at the engine again (Request::release),
  // while a pending one would hand itself to it (adopt). Queued sends end as the
  // transports close.
  auto ended = [] { return std::make_exception_ptr(UsageError("the runtime ended before this operation completed")); };
  for (auto& r : queues_.take_all_posted()) fail(*r, ended());
  for (auto& [id, r] : rdv_sends_) fail(*r, ended());
  rdv_sends_.clear();
  for (auto& [id, r] : rdv_recvs_) fail(*r, ended());
  rdv_recvs_.clear();
  for (auto* t : transports_) t->close();
}

// The progress thread polls only while no user thread waits in the library (a waiter
// polls for itself) and none has for a while, and otherwise sleeps: in epoll on the
// transports' fds when armed, on a condition variable with a short timeout while the
// program's own waits drive progress. It thus never wakes for a message that a
// polling waiter is about to take, which on a full node would steal a core.
void Engine::progress_thread_main() {
  std::uint64_t seen = wait_count_.load();
  while (!stop_.load()) {
    maybe_dump();
    std::uint64_t waits = wait_count_.load(std::memory_order_relaxed);
    if (waiters_.load(std::memory_order_seq_cst) > 0 || waits != seen) {
      seen = waits;
      {
        // While a waiter sleeps it covers every fd itself: park until it wakes.
        std::unique_lock lk(pt_mu_);
        auto park = sleeping_waiters_.load() > 0 ? std::chrono::nanoseconds(std::chrono::milliseconds(100))
                                                 : std::chrono::nanoseconds(kQuiet);
        pt_cv_.wait_for(lk, park);
      }
      // A program that only posts (isend, compute, isend, ...) never waits: poll once
      // per park when nobody else is in the library, so its messages still move.
      if (waiters_.load(std::memory_order_seq_cst) == 0 && mu_.try_lock()) {
        progress_locked();
        mu_.unlock();
      }
      continue;
    }
    // For frames that need the rank to act (a ready-to-send to answer, a clear-to-send,
    // a full ring to drain: wire::kConcernsAll) and the transports' own events, not for
    // every frame (wants none): what ends a wait is taken by the thread that waits,
    // and an eager message may wait in the ring for the program. Counted as a sleeper
    // for any frame, it made every sender look at `awake`, a line the rank's polling
    // threads write as they start and stop (an RPC server: at every request).
    sleep_once([this] { return stop_.load(); }, nap_, false, nullptr, nullptr, 0);
    if (stop_.load()) continue;
    if (waiters_.load(std::memory_order_seq_cst) > 0) {
      // A waiter came meanwhile and may sleep in the same set; the doorbell that woke
      // this thread was drained here, so wake the waiter to look for itself.
      sleeper_.ring(true);
      continue;
    }
    std::lock_guard lk(mu_);
    progress_locked();
  }
}

}  // namespace ipc::detail
