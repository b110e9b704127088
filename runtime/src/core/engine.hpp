// The engine: matching, the eager/rendezvous protocol, progress and waiting.
//
// Concurrency. One lock, the progress lock (a spin lock biased to the program's
// thread, which takes it without an atomic read-modify-write: core/progress_lock.hpp),
// guards all engine and transport state. Whoever holds it may post operations and
// poll the transports; a poll never blocks, so the lock is held for microseconds. A
// thread blocked in the library polls under the lock itself (busy, then yielding,
// then asleep in epoll on the rank's doorbell and the transports' fds: the one
// waiter, block_until). A background progress thread keeps TCP moving while the
// program computes: it sleeps in the same epoll set and polls only when no user
// thread is waiting in the library, so it never competes with a polling waiter.
//
// Protocol. A message up to the route's eager limit goes as one `eager` frame. A
// larger one is announced (`rts`); when the receive matches, the receiver places the
// payload (resizing a vector to the announced size) and answers `cts`; the sender
// then sends `data` straight from the user's buffer, which the receiver's transport
// writes straight into place.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/async.hpp"
#include "core/context.hpp"
#include "core/diagnostics.hpp"
#include "core/matching.hpp"
#include "core/pool.hpp"
#include "core/progress_lock.hpp"
#include "core/protocol.hpp"
#include "core/waiting.hpp"
#include "core/transfer.hpp"
#include "core/status.hpp"
#include "transport/transport.hpp"

namespace ipc::detail {

/// The ranks of a communicator of some of the job's ranks (context.hpp: kGroupBit).
struct Group {
  std::vector<int> job;    // its rank -> the job's rank
  std::vector<int> local;  // the job's rank -> its rank, -1 for others
  int size() const { return static_cast<int>(job.size()); }
};

// A non-blocking operation's state. Counted references own it: its handles
// (ipc::Request, RequestRef) and, once every handle was dropped before it completed,
// the request itself (`kept`: Engine::adopt; mark_done lets go). The engine's own
// references (match queues, rendezvous tables) own nothing, so a message costs no
// count. A blocking call's request lives on its stack (one reference, never let go).
// Made by make() from a per-thread free list and freed by unref() when the last
// reference goes: no shared_ptr control block, and a handle that is the only owner
// lets go without an atomic read-modify-write.
struct RequestState final : transport::Completion {
  enum class Kind : std::uint8_t { send, recv };
  explicit RequestState(Kind k) : kind(k) {}

  /// A request with one reference (the caller's), from the free list.
  static RequestState* make(Kind k) { return new (FreeList<kSize, kAlign>::get()) RequestState(k); }
  /// Lets go of one reference; the last one frees it.
  static void unref(RequestState* r) noexcept {
    // The only owner: no other thread can take a reference meanwhile (taking one
    // needs one), and every other owner's release happened before this load.
    if (r->refs.load(std::memory_order_acquire) == 1 || r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      r->~RequestState();
      FreeList<kSize, kAlign>::put(r);
    }
  }
  static void retain(RequestState* r) noexcept { r->refs.fetch_add(1, std::memory_order_relaxed); }

  std::atomic<std::uint32_t> refs{1};
  Kind kind;
  std::atomic<bool> done{false};
  bool kept = false;  // it owns itself: its handles were dropped before it completed (Engine::adopt)
  bool background = false;  // completed by a task that owns it too (a non-blocking collective)
  std::atomic<bool*> waiter{nullptr};  // the thread waiting for it (its Engine::woke_other_)
  bool finished = false;  // the waiting thread has run target.finish and taken the status
  bool handed = false;    // completed by another thread than its waiter (Engine::handoffs_)
  Status status;
  std::exception_ptr error;
  class Engine* engine = nullptr;

  // receive
  std::uint32_t comm = 0;
  int source = 0;
  int tag = 0;
  std::optional<RecvTarget> target;   // owned (non-blocking receives; sends have none)
  std::shared_ptr<void> hold;         // what the target writes into, when the request owns it
  const RecvTarget* to = nullptr;     // the one in use: the owned one, or a blocking caller's
  void* dst = nullptr;  // null after a failed prepare(): the payload is dropped
  std::uint64_t rdv_id = 0;  // a rendezvous receive's id (its cts names it)
  // A rendezvous receive whose second part the sender writes (Engine::copy_shared):
  std::uint64_t rdv_cookie = 0;  // the sender's number for it (fin names it)
  std::uint64_t rdv_remote = 0;  // the sender's buffer
  std::int8_t shared_slot = -1;  // the offer the sender claimed, until it has written
  bool shared_ok = false;        // this side's part is in
  const Group* group = nullptr;  // its communicator's ranks, when not the job's (statuses are translated)

  // send
  SendSource src;
  int dest = 0;

  void complete(const std::error_code& ec) override;

 private:
  static constexpr std::size_t kSize = 320, kAlign = 16;
  friend struct RequestSize;
};
struct RequestSize {
  static_assert(sizeof(RequestState) <= RequestState::kSize && alignof(RequestState) <= RequestState::kAlign);
};

/// An owning reference to a request (the engine's own non-blocking calls; ipc::Request
/// is the program's).
class RequestRef {
 public:
  RequestRef() = default;
  /// Takes over the reference `r` carries (make()'s).
  explicit RequestRef(RequestState* r) : r_(r) {}
  RequestRef(RequestRef&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  RequestRef& operator=(RequestRef&& o) noexcept {
    if (this != &o) {
      if (r_) RequestState::unref(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  RequestRef(const RequestRef& o) : r_(o.r_) {
    if (r_) RequestState::retain(r_);
  }
  RequestRef& operator=(const RequestRef& o) {
    RequestRef copy(o);
    return *this = std::move(copy);
  }
  ~RequestRef() {
    if (r_) RequestState::unref(r_);
  }
  RequestState* get() const { return r_; }
  RequestState& operator*() const { return *r_; }
  RequestState* operator->() const { return r_; }
  explicit operator bool() const { return r_ != nullptr; }
  /// Hands the reference to the caller.
  RequestState* release() { return std::exchange(r_, nullptr); }

 private:
  RequestState* r_ = nullptr;
};

class Engine final : public transport::Sink {
 public:
  struct Options {
    int rank = 0;
    int size = 1;
    std::string node;
    std::vector<transport::Endpoint*> route;               // by peer rank (self's for own)
    std::vector<std::string> peer_nodes;                   // by peer rank, for messages
    WaitPolicy wait;
    wire::FrameLimits limits;            // of frames read off the wire
    const base::Doorbell* doorbell = nullptr;  // this rank's (required; outlives the engine)
    bool progress_thread = true;
  };

  explicit Engine(Options opt);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int rank() const { return opt_.rank; }
  int size() const { return opt_.size; }
  const std::string& node() const { return opt_.node; }
  /// The node of the job's rank `r`.
  const std::string& node_of(int r) const { return opt_.peer_nodes[static_cast<std::size_t>(r)]; }

  /// With `done_now`: a send that completes at once (a small message into shared
  /// memory) needs no request: null is returned and its status is in *done_now.
  RequestRef isend(std::uint32_t comm, int dest, int tag, SendSource src, Status* done_now = nullptr);
  /// Only the send that completes at once (isend's with `done_now`): true when the
  /// message has left (its status is {dest, tag, size}, which the caller builds from
  /// what it passed rather than reads back from memory written here); false when
  /// nothing was sent (`src` need only be valid during the call).
  bool send_now(std::uint32_t comm, int dest, int tag, const SendSource& src);
  /// The same from `size` bytes at `data` (a program's raw value or range).
  bool send_now(std::uint32_t comm, int dest, int tag, const void* data, std::size_t size);
  /// `hold`: kept alive with the request (the memory `dst` writes into).
  RequestRef irecv(std::uint32_t comm, int source, int tag, RecvTarget&& dst, std::shared_ptr<void> hold = nullptr);
  /// The same into `bytes` at `data` (RecvTarget's `fixed` case, built in place).
  RequestRef irecv_raw(std::uint32_t comm, int source, int tag, void* data, std::size_t bytes, bool exact);
  /// A handle of `r` is dropped: true when `r` has not completed and took over the
  /// handle's reference (it keeps itself until it completes; once only); false when
  /// the caller is to let go of it.
  bool adopt(RequestState& r);
  /// Blocking forms: no allocation.
  Status send(std::uint32_t comm, int dest, int tag, SendSource src);
  Status recv(std::uint32_t comm, int source, int tag, const RecvTarget& dst);
  std::optional<Status> iprobe(std::uint32_t comm, int source, int tag);
  Status probe(std::uint32_t comm, int source, int tag);

  /// Blocks until `r` completes; then runs its finish step and rethrows its error.
  Status wait(RequestState& r);
  /// Non-blocking: polls once; the status when `r` has completed.
  std::optional<Status> test(RequestState& r);
  /// Blocks until one of `rs` (non-null ones) completes; returns its index.
  std::size_t wait_any(const std::vector<RequestState*>& rs);
  /// What a waiter does besides arming the transports before it sleeps, so that the
  /// ones it waits for ring its doorbell (the node group announces itself to its
  /// writers). arm() returns false when there is no need to sleep; every arm() is
  /// paired with disarm().
  struct SleepGuard {
    virtual bool arm() = 0;
    virtual void disarm() = 0;
    /// A collective's wait through the node's shared segment: on a node whose ranks
    /// outnumber its CPUs it yields for WaitPolicy::group_yield, not yield, before it
    /// sleeps (its writers ring sleepers).
    bool in_group = false;

   protected:
    ~SleepGuard() = default;
  };
  /// A condition borrowed for the length of a wait (no copy, no allocation).
  class Condition {
   public:
    template <class F>
    Condition(const F& f)  // NOLINT: implicit, from any callable returning bool
        : obj_(&f), call_([](const void* o) { return static_cast<bool>((*static_cast<const F*>(o))()); }) {}
    bool operator()() const { return call_(obj_); }

   private:
    const void* obj_;
    bool (*call_)(const void*);
  };
  /// The one waiter: polls (busy, yielding, then asleep on the doorbell, by the job's
  /// wait policy) until `done()` holds or `deadline` passes; true when done() held.
  /// `done` is called without the lock, must be cheap, and may throw (the exception
  /// leaves). While it sleeps, every 100 ms the transports look for peers that died
  /// silently (gone() then tells). While it spins it polls the transports on every
  /// `poll_every`-th round only (a condition that shared memory makes true needs no
  /// poll to become true, and the poll would delay seeing it).
  /// `key`: the one completion flag `done` depends on, if any (only its completion
  /// then wakes the thread: Sleeper::enter); a condition that no completion makes true
  /// (shared-memory flags whose writers ring, as a node group's) may name any address
  /// that is never completed.
  /// `wants`: the frames (wire::Frame::concerns bits) whose arrival may make `done`
  /// true, so that shared memory need not wake the thread for others: kConcernsAll,
  /// or none (0) for a condition that only shared-memory writers who ring make true.
  bool wait_until(Condition done, std::chrono::steady_clock::time_point deadline, SleepGuard* guard = nullptr,
                  unsigned poll_every = 1, const void* key = nullptr, std::uint64_t wants = wire::kConcernsAll);
  /// Marks the calling thread as a service that polls for peers' messages (an RPC
  /// server): its waits count as polling (Transport::polling) from their first poll,
  /// so that peers do not ring a sleeping thread of this rank for what it will see.
  static void poll_for_peers_on_this_thread();
  /// Marks the calling thread as a service of the library's (a home's queue): its
  /// waits yield the CPU from the first poll on, as on an oversubscribed node, because
  /// it shares the rank's CPU with the program's thread, which must not wait for a
  /// busy-polling service to be descheduled.
  static void yield_first_on_this_thread();
  /// Whether `peer` is known to be lost (any thread, no lock).
  bool gone(int peer) const { return gone_[static_cast<std::size_t>(peer)].load(std::memory_order_acquire); }
  /// Whether the job's rank `peer` is gone, after asking the transports to look now.
  bool check_gone(int peer) {
    if (gone(peer)) return true;
    std::lock_guard lk(mu_);
    for (auto* t : transports_) t->check_peers(*this);
    return gone(peer);
  }
  /// The name of the transport that reaches the job's rank `peer` ("shm", "tcp", "self").
  std::string_view transport_name(int peer) const {
    return opt_.route[static_cast<std::size_t>(peer)]->transport().name();
  }

  /// Waits until every queued frame has left (before the job's final fence).
  void flush();
  /// Stops the progress thread and closes the transports. Idempotent.
  void shutdown();
  /// Runs `task` on lane `lane` (core/async.hpp), after the tasks posted to it before.
  void post_async(std::uint32_t lane, std::function<void()> task) { lanes_.post(lane, std::move(task)); }
  /// Waits for the lanes' tasks to end (the program ends normally).
  void finish_async() { lanes_.stop(); }

  // transport::Sink
  Placement on_frame(int peer, std::span<const std::byte> head, std::uint64_t length) override;
  void on_frame_done(int peer, void* token) override;
  const char* on_whole(int peer, std::span<const std::byte> head, const std::byte* payload,
                       std::uint64_t length) override;
  void on_frame_aborted(int peer, void* token) override;
  void on_peer_lost(int peer, const std::string& why) override;

  /// Called by RequestState::complete and the protocol: marks `r` done, wakes sleepers.
  void mark_done(RequestState& r);
  /// The same for any completion flag a waiter polls.
  void signal_done(std::atomic<bool>& done);

 private:
  void start_send(RequestState* r, std::uint32_t comm, int dest, int tag, SendSource src);
  /// send_now(), inlined into isend.
  bool try_send_now(std::uint32_t comm, int dest, int tag, const void* data, std::size_t size);
  /// `src` as one eager frame to `dest` now, without a completion (under the lock):
  /// false when the transport cannot (Endpoint::send_now); nothing is sent then.
  bool eager_now(int dest, std::uint32_t comm, int tag, const void* data, std::size_t size);
  /// Whether a message of `size` bytes to peer `p` may be offered to its endpoint's
  /// send_now(): up to the eager limit and eager_room_limit() always; up to
  /// eager_drained_limit() unless a receive from that peer is posted (both ways at once:
  /// one copy by each receiver then costs less than two through the rings). Under mu_.
  [[gnu::always_inline]] bool may_send_now(std::size_t p, std::size_t size) const {
    if (size <= room_[p]) [[likely]]
      return true;
    return size <= drained_[p] && !queues_.posted_from(static_cast<int>(p));
  }
  /// `src` as one eager frame to `dest` (under the lock); `done` told as the transport says.
  void send_eager(int dest, std::uint32_t comm, int tag, const SendSource& src, transport::Completion* done);
  /// Encodes `h` and sends it with `length` bytes at `payload` to `dest` (under the lock).
  void send_frame(int dest, const proto::Header& h, const void* payload, std::uint64_t length,
                  transport::Completion* done);
  /// The rendezvous send `cookie` to `peer`, taken out of those awaiting an answer; null
  /// when there is none (a peer naming another's request breaks the protocol).
  RequestState* take_rendezvous_send(std::uint64_t cookie, int peer);
  /// A payload-less control frame (rts, cts, fin) has arrived; null, or what is wrong.
  const char* on_control(int peer, const proto::Header& h);
  /// @throws ipc::UsageError unless `source` is a rank of the job or any_source.
  void check_source(int source, const char* op) const {
    if (source != kAnySource && static_cast<unsigned>(source) >= static_cast<unsigned>(opt_.size)) [[unlikely]]
      bad_source(source, op);
  }
  [[noreturn]] void bad_source(int source, const char* op) const;
  /// The receive of `r`, whose target (its own, or a blocking caller's) is in place.
  void start_recv(RequestState* r, std::uint32_t comm, int source, int tag);
  /// start_recv(), inlined into irecv_raw.
  void start_recv_here(RequestState* r, std::uint32_t comm, int source, int tag);
  bool progress_locked();
  struct RingAfterUnlock;
  /// Polls (busy, yielding, then asleep) until `done()`, called without the lock.
  void block_until(Condition done);
  /// `key`: the completion flag `done` reads, when it reads no other (Sleeper::enter).
  template <class Done>
  bool block_until_impl(Done&& done,
                        std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
                        SleepGuard* guard = nullptr, unsigned poll_every = 1, const void* key = nullptr,
                        std::uint64_t wants = wire::kConcernsAll);
  void progress_thread_main();
  void deliver_eager(RequestState& r, const Unexpected& u);
  void accept_rendezvous(RequestState* r, const Envelope& env, std::uint64_t sender_cookie,
                         std::uint64_t remote, std::size_t size);
  bool copy_shared(RequestState* r, const Envelope& env, transport::Endpoint& ep, int slot,
                   std::uint64_t sender_cookie, std::uint64_t remote, std::size_t size);
  const char* on_written(int peer, const proto::Header& h);
  void end_read(RequestState& r, int peer, std::uint32_t comm, int tag, std::uint64_t cookie);
  /// Asks the sender of rendezvous `cookie` for its payload as data (cts).
  void ask_for_data(RequestState* r, int peer, std::uint32_t comm, int tag, std::uint64_t cookie);
  /// Makes the single-copy reads matched during the poll that ends, together.
  void flush_reads();
  /// Sleeps in epoll until a transport or a completion wakes this thread (at most
  /// `max`), unless `done()` already holds once every transport is armed.
  /// False when it slept the whole of `max` with nothing to wake for.
  bool sleep_once(const std::function<bool()>& done, std::chrono::milliseconds max, bool waiter,
                  SleepGuard* guard = nullptr, const void* key = nullptr, std::uint64_t wants = wire::kConcernsAll);
  /// Where `r`'s payload of `size` goes (r.dst; null, with r.error, when it does not fit).
  void place(RequestState& r, std::size_t size) {
    if (r.to->fits_fixed(size)) [[likely]] {  // the common case inline
      r.dst = r.to->fixed;
      return;
    }
    place_slow(r, size);
  }
  void place_slow(RequestState& r, std::size_t size);
  RequestState* take_eager(const Envelope& e, std::uint64_t length);
  /// An error of `r`'s target (the message does not fit or does not deserialize) with
  /// the receive it concerns named: "receive from rank 1 on n2 (tag 5): ...".
  std::exception_ptr receive_error(std::exception_ptr e, const RequestState& r) const;
  void fail(RequestState& r, std::exception_ptr e);
  /// Runs `r`'s finish step once, rethrows its error, returns its status.
  Status finish(RequestState& r) {
    if ((r.finished || !r.to || !r.to->finish) && !r.error && !r.group) [[likely]] {
      r.finished = true;
      return r.status;
    }
    return finish_slow(r);
  }
  Status finish_slow(RequestState& r);

  Options opt_;
  std::vector<transport::Transport*> transports_;  // distinct, self's first
  // The longest nap of a sleeping thread: 100 ms, less when a transport cannot wake
  // sleepers (Transport::sleep_poll).
  std::chrono::milliseconds nap_{100};
  std::chrono::steady_clock::time_point naps_checked_{};  // peers last looked at after a nap
  std::vector<std::size_t> eager_;                 // by peer: its route's eager limit
  std::vector<std::size_t> room_;     // by peer: sent at once when there is room (eager_room_limit())
  std::vector<std::size_t> drained_;  // ... in an exchange (eager_drained_limit(); at least room_)
  ProgressLock mu_;
  // This thread completed a request another thread of its rank waits for, or rang the
  // doorbell for a sleeping one (mark_done, signal_done): on one CPU, a waiter then
  // steps aside (block_until_impl).
  static inline thread_local bool woke_other_ = false;
  // Requests one thread of this rank completed for another that has not returned from
  // its wait yet (RequestState::handed): on one CPU, a waiter steps aside while there
  // are any, even one that began after the completion (a program's thread whose
  // barrier wait ended in the poll that took the RPC server's request, and which went
  // on to its next wait, kept the CPU 50 us while the server's call waited).
  std::atomic<int> handoffs_{0};
  // Inside a waiter's poll (depth): a thread of this rank to wake is woken once the
  // progress lock is let go of, not from inside it (ring_due_). On one CPU the woken
  // thread takes the CPU at once, and had it taken it from a thread holding the lock,
  // its own polls would find the lock held until it gave the CPU back (a program's
  // thread woken from a barrier by its RPC server spun 50 us that way, the next call
  // waiting; RPC calls of 100-700 us at every barrier).
  static inline thread_local int defer_rings_ = 0;
  static inline thread_local bool ring_due_ = false;
  MatchQueues<RequestState*> queues_;  // (owning nothing, as every engine reference)
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, RequestState*> rdv_sends_;  // awaiting cts
  std::unordered_map<std::uint64_t, RequestState*> rdv_recvs_;  // awaiting data
  // Rendezvous payloads to read from their senders' memory (kOneSidedRead), matched
  // while the transports are polled and read when the poll ends, each sender's in one
  // call where its transport can (Endpoint::read_many): a window of 64 messages of
  // 16 KiB took one system call each, which cost as much as a copy of 16 KiB.
  struct PendingRead {
    RequestState* r;
    transport::Endpoint* ep;
    int peer;
    std::uint32_t comm;
    int tag;
    std::uint64_t cookie;
    std::uint64_t remote;
  };
  std::vector<PendingRead> reads_, reading_;
  std::vector<transport::Endpoint::ReadPiece> read_pieces_;
  int poll_depth_ = 0;  // progress_locked() calls under way on this engine (the lock holder's)
  std::vector<std::string> lost_;  // by peer: why unreachable ("" = fine)
  std::unique_ptr<std::atomic<bool>[]> gone_;  // by peer: lost_ is set (read without the lock)
  struct Revoked {
    int lost;
    std::string why;
  };
  std::unordered_map<std::uint32_t, Revoked> revoked_;  // abandoned contexts (Engine::revoke)
  // Groups by base context; never removed (a Group's address stays valid).
  mutable std::mutex groups_mu_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Group>> groups_;
  std::string revoke_locked(std::uint32_t comm, int lost, int reporter);
  /// The PeerLost of an operation on abandoned context `comm` (under the lock).
  std::exception_ptr revoked_error(const Revoked& rv) const;
  /// Tells the sender of announced message `u` that it will not be fetched (a fin).
  void decline(const Unexpected& u);
  bool asymmetric_;                // completions skip the full barrier (asymmetric_barriers())
  bool shut_ = false;

  Sleeper sleeper_;
  std::atomic<int> waiters_{0};
  std::atomic<int> sleeping_waiters_{0};
  // Calls into the engine (posts and waits): the progress thread stays away while
  // this keeps changing, since the program's own calls make progress then.
  std::atomic<std::uint64_t> wait_count_{0};
  // test() on a pending request: how many so far, and when the transports last looked
  // for dead peers on its behalf (under mu_).
  unsigned pending_tests_ = 0;
  std::chrono::steady_clock::time_point peers_checked_{};
  void note_activity() { wait_count_.store(wait_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

 public:
  /// The PeerLost a `op` ("send to", "receive from", ...) on lost `peer` fails with.
  std::exception_ptr lost_error(const char* op, int peer) const;
  /// "rank 3 on node2": for messages.
  std::string where(int peer) const;
  /// Collective `op` on context `ctx` starts: its number there, the same on every
  /// rank (contexts share 64 counters: numbers stay equal across ranks).
  std::uint64_t enter_collective(std::uint32_t ctx, const char* op);
  /// Writes this rank's report when one was asked for (core/diagnostics.hpp).
  void maybe_dump();
  /// Withdraws a receive that has not matched yet; one that has is waited for.
  void cancel_recv(RequestState& r);
  /// The ranks of the communicator of (grouped) context `ctx` and of its collectives:
  /// `job_ranks`, in its rank order. Registered once per context, for good.
  void add_group(std::uint32_t ctx, std::vector<int> job_ranks);
  /// The group of grouped context `ctx` (null when there is none).
  const Group* group_of(std::uint32_t ctx) const;
  /// A rank of context `ctx`'s communicator as a rank of the job (checked: `op` names
  /// the operation in the error). any_source stays.
  int job_rank(std::uint32_t ctx, int rank, const char* op) const;
  /// A job's rank as a rank of context `ctx`'s communicator (-1: not a member).
  int local_rank(std::uint32_t ctx, int job) const;
  /// The next number of `purpose` this rank would take (for Engine users that agree
  /// on one with other ranks), and taking an agreed one.
  std::uint32_t next_context(Purpose purpose) const { return contexts_.next(purpose); }
  std::uint32_t take_context_at(Purpose purpose, std::uint32_t n) { return contexts_.take_at(purpose, n); }
  /// Abandons the collectives of context `comm` after `lost` (a rank; -1: unknown)
  /// broke one of them: fails every receive posted on it, declines the messages
  /// announced on it, and tells every other live rank to do the same (an abort frame),
  /// so that no survivor waits for a step that will never come. Later operations on
  /// `comm` fail at once. Returns why ("rank 2 on n1 is gone (...)"), for the caller's
  /// error. Idempotent: the first cause stays.
  std::string revoke(std::uint32_t comm, int lost);

 private:
  ContextSequence contexts_;
  // Hang diagnosis (core/diagnostics.hpp): the threads blocked in the library.
  struct Blocked {
    OpNote* note;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex diag_mu_;
  std::vector<Blocked> blocked_;
  std::array<std::atomic<std::uint64_t>, 64> coll_seq_{};
  std::atomic<const char*> last_coll_op_{nullptr};
  std::atomic<std::uint32_t> last_coll_ctx_{0};
  std::atomic<std::uint64_t> last_coll_seq_{0};
  void note_blocked(OpNote* note, bool on);
  friend struct BlockedScope;
  std::atomic<bool> stop_{false};
  std::mutex pt_mu_;
  std::condition_variable pt_cv_;
  std::thread progress_;
  Lanes lanes_;  // the non-blocking collectives (shutdown() ends them first)
};

}  // namespace ipc::detail
