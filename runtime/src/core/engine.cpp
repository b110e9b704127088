#include "core/engine.hpp"

#include <algorithm>
#include <cstring>

#include "core/pool.hpp"
#include "base/copy.hpp"
#include "base/errors.hpp"

namespace ipc::detail {
namespace {

// Tokens handed to transports: what a frame's payload is for, in the pointer's low
// bits (both kinds of object are aligned to 8). Control frames have none (null).
enum class Into : std::uintptr_t { posted = 0, unexpected = 1, rendezvous = 2 };
constexpr std::uintptr_t kIntoMask = 3;
void* token_of(void* p, Into k) { return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) | static_cast<std::uintptr_t>(k)); }
Into kind_of(void* t) { return static_cast<Into>(reinterpret_cast<std::uintptr_t>(t) & kIntoMask); }
template <class T>
T* object_of(void* t) {
  return reinterpret_cast<T*>(reinterpret_cast<std::uintptr_t>(t) & ~kIntoMask);
}
static_assert(alignof(RequestState) >= 4 && alignof(Unexpected) >= 4);

}  // namespace

void RequestState::complete(const std::error_code& ec) {
  if (ec && !error)
    error = std::make_exception_ptr(PeerLost(
        "send to " + engine->where(dest) + " failed: " + ec.message(), dest));
  engine->mark_done(*this);
}

Engine::Engine(Options opt)
    : opt_(std::move(opt)),
      lost_(static_cast<std::size_t>(opt_.size)),
      gone_(new std::atomic<bool>[static_cast<std::size_t>(opt_.size)]()),
      asymmetric_(asymmetric_barriers()),
      sleeper_(*opt_.doorbell) {
  mu_.set_one_cpu(opt_.wait.one_cpu);
  // Self's transport first: a rank's messages to itself are looked at first.
  auto add = [&](transport::Transport* t) {
    if (std::find(transports_.begin(), transports_.end(), t) == transports_.end()) {
      transports_.push_back(t);
      nap_ = std::max(std::chrono::milliseconds(1), std::min(nap_, t->sleep_poll()));
    }
  };
  add(&opt_.route.at(static_cast<std::size_t>(opt_.rank))->transport());
  for (auto* ep : opt_.route) {
    const auto& t = ep->transport();
    add(&ep->transport());
    eager_.push_back(t.eager_limit());
    room_.push_back(std::max(t.eager_limit(), t.eager_room_limit()));
    drained_.push_back(std::max(room_.back(), t.eager_drained_limit()));
  }
  for (auto* t : transports_)
    if (t->wait_fd() >= 0) sleeper_.watch(t->wait_fd());
  if (diag::wake_fd() >= 0) sleeper_.watch(diag::wake_fd());  // a report asked for wakes a sleeper
  if (opt_.progress_thread && opt_.size > 1) progress_ = std::thread([this] { progress_thread_main(); });
}

Engine::~Engine() { shutdown(); }

void Engine::add_group(std::uint32_t ctx, std::vector<int> job_ranks) {
  auto g = std::make_unique<Group>();
  g->local.assign(static_cast<std::size_t>(opt_.size), -1);
  for (std::size_t i = 0; i < job_ranks.size(); ++i) g->local[static_cast<std::size_t>(job_ranks[i])] = static_cast<int>(i);
  g->job = std::move(job_ranks);
  std::lock_guard lk(groups_mu_);
  groups_.try_emplace(base_context(ctx), std::move(g));
}

const Group* Engine::group_of(std::uint32_t ctx) const {
  std::lock_guard lk(groups_mu_);
  auto it = groups_.find(base_context(ctx));
  return it == groups_.end() ? nullptr : it->second.get();
}

int Engine::job_rank(std::uint32_t ctx, int rank, const char* op) const {
  if (!grouped(ctx)) return rank;
  const Group* g = group_of(ctx);
  if (!g) throw UsageError(std::string(op) + ": a communicator this rank does not belong to");
  if (rank == kAnySource) return rank;
  if (rank < 0 || rank >= g->size())
    throw UsageError(std::string(op) + " rank " + std::to_string(rank) + ", but the communicator has ranks 0 to " +
                     std::to_string(g->size() - 1));
  return g->job[static_cast<std::size_t>(rank)];
}

std::string Engine::where(int peer) const {
  std::string s = "rank " + std::to_string(peer);
  if (peer >= 0 && static_cast<std::size_t>(peer) < opt_.peer_nodes.size() && !opt_.peer_nodes[peer].empty())
    s += " on " + opt_.peer_nodes[peer];
  return s;
}

std::exception_ptr Engine::lost_error(const char* op, int peer) const {
  return std::make_exception_ptr(PeerLost(std::string(op) + " " + where(peer) +
                                              " failed: the rank is gone (" + lost_[static_cast<std::size_t>(peer)] +
                                              ")",
                                          peer));
}

void Engine::send_frame(int dest, const proto::Header& h, const void* payload, std::uint64_t length,
                        transport::Completion* done) {
  proto::Encoded head;
  proto::encode(h, head);
  opt_.route[static_cast<std::size_t>(dest)]->send(wire::Frame{head.span(), payload, length, proto::concerns(h)},
                                                    done);
}

// Marks `r` done, then wakes a sleeping waiter. The store must be ordered before the
// load of the sleeper count (a waiter counts itself, then checks `done`): a full
// barrier per completion, unless sleepers pay for it with a membarrier (see Sleeper).
// A request whose handle was dropped (adopt()) is freed here, once marked.
void Engine::mark_done(RequestState& r) {
  bool kept = r.kept;
  bool* waiter = r.waiter.load(std::memory_order_relaxed);
  if (waiter && waiter != &woke_other_) {  // another thread waits for it
    woke_other_ = true;
    r.handed = true;  // seen by the waiter after `done` (signal_done releases it)
    handoffs_.fetch_add(1, std::memory_order_relaxed);
  }
  signal_done(r.done);
  if (kept) {
    r.kept = false;
    RequestState::unref(&r);
  }
}

void Engine::signal_done(std::atomic<bool>& done) {
  if (asymmetric_) {
    done.store(true, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    done.store(true, std::memory_order_seq_cst);
  }
  if (!sleeper_.wants_ring_for(&done)) return;
  woke_other_ = true;
  if (defer_rings_ > 0)
    ring_due_ = true;
  else
    sleeper_.ring(true);
}

void Engine::fail(RequestState& r, std::exception_ptr e) {
  if (!r.error) r.error = std::move(e);
  mark_done(r);
}

void Engine::place_slow(RequestState& r, std::size_t size) {
  try {
    r.dst = r.to->destination(size);
  } catch (...) {
    r.error = receive_error(std::current_exception(), r);
    r.dst = nullptr;  // the transport reads and drops the payload: nothing is allocated
  }
}

std::exception_ptr Engine::receive_error(std::exception_ptr e, const RequestState& r) const {
  auto what = [&](const Error& x) {
    return "receive from " + where(r.status.source) + " (tag " + std::to_string(r.status.tag.value) +
           "): " + detail::without_origin(x.what());
  };
  try {
    std::rethrow_exception(e);
  } catch (const Truncation& x) {
    return std::make_exception_ptr(Truncation(what(x)));
  } catch (const ProtocolError& x) {
    return std::make_exception_ptr(ProtocolError(what(x)));
  } catch (...) {
    return e;
  }
}

// A non-blocking operation's request is owned by its handle (ipc::Request); the
// engine's references to it (match queues, rendezvous tables) own nothing, so that
// they cost no atomic reference counting on the way of every message. A handle
// dropped before its request completes hands its ownership to the request itself
// (adopt(): `kept`), and mark_done() lets go of that when it completes.
bool Engine::send_now(std::uint32_t comm, int dest, int tag, const SendSource& src) {
  return try_send_now(comm, dest, tag, src.data, src.size);
}

bool Engine::send_now(std::uint32_t comm, int dest, int tag, const void* data, std::size_t size) {
  return try_send_now(comm, dest, tag, data, size);
}

// On the way of every isend: inlined there.
[[gnu::always_inline]] inline bool Engine::try_send_now(std::uint32_t comm, int dest, int tag, const void* data,
                                                        std::size_t size) {
  if (grouped(comm) || dest < 0 || dest >= opt_.size) return false;
  auto p = static_cast<std::size_t>(dest);
  std::lock_guard lk(mu_);
  if (lost_[p].empty() && revoked_.empty() && may_send_now(p, size) && eager_now(dest, comm, tag, data, size)) {
    note_activity();
    return true;
  }
  return false;
}

RequestRef Engine::isend(std::uint32_t comm, int dest, int tag, SendSource src, Status* done_now) {
  if (done_now && try_send_now(comm, dest, tag, src.data, src.size)) {
    *done_now = Status{dest, Tag{tag}, src.size};
    return {};
  }
  RequestRef r(RequestState::make(RequestState::Kind::send));
  start_send(r.get(), comm, dest, tag, std::move(src));
  return r;
}

RequestRef Engine::irecv(std::uint32_t comm, int source, int tag, RecvTarget&& dst, std::shared_ptr<void> hold) {
  RequestRef r(RequestState::make(RequestState::Kind::recv));
  r->target.emplace(std::move(dst));
  if (hold) r->hold = std::move(hold);
  r->to = &*r->target;
  start_recv(r.get(), comm, source, tag);
  return r;
}

RequestRef Engine::irecv_raw(std::uint32_t comm, int source, int tag, void* data, std::size_t bytes, bool exact) {
  RequestRef r(RequestState::make(RequestState::Kind::recv));
  RecvTarget& t = r->target.emplace();
  t.fixed = data;
  t.fixed_bytes = bytes;
  t.exact = exact;
  r->to = &t;
  start_recv_here(r.get(), comm, source, tag);
  return r;
}

bool Engine::adopt(RequestState& r) {
  std::lock_guard lk(mu_);  // completions happen under it: done cannot change meanwhile
  if (r.done.load(std::memory_order_acquire) || r.kept) return false;
  r.kept = true;
  return true;
}

// Blocking calls keep their request on the stack: nothing refers to it once it is
// done, and the engine's references to it own nothing, so a blocking call allocates
// nothing.
Status Engine::send(std::uint32_t comm, int dest, int tag, SendSource src) {
  if (!grouped(comm) && dest >= 0 && dest < opt_.size) {  // (a group's ranks go by start_send)
    // An eager message needs no request: the transport sends or copies it before its
    // send returns (a large eager frame into a full ring excepted: waited for here).
    struct Sent final : transport::Completion {
      Engine* engine = nullptr;
      std::atomic<bool> done{false};
      // Set when the transport reports: a default std::error_code costs a call
      // (system_category) on the way of every blocking send.
      std::optional<std::error_code> ec;
      void complete(const std::error_code& e) override {
        ec = e;
        engine->signal_done(done);
      }
    } sent;
    sent.engine = this;
    auto p = static_cast<std::size_t>(dest);
    bool eager = false, now = false;
    {
      // One lock for both tries: a transport that cannot send at once (tcp) is asked
      // for the queued send right after.
      std::lock_guard lk(mu_);
      if (lost_[p].empty() && src.size <= eager_[p]) {
        eager = true;
        note_activity();
        now = eager_now(dest, comm, tag, src.data, src.size);
        if (!now) send_eager(dest, comm, tag, src, &sent);
      }
    }
    if (eager) {
      if (now) return Status{dest, Tag{tag}, src.size};
      if (!sent.done.load(std::memory_order_acquire))
        block_until([&] { return sent.done.load(std::memory_order_seq_cst); });
      if (sent.ec && *sent.ec)
        throw PeerLost("send to " + where(dest) + " failed: " + sent.ec->message(), dest);
      return Status{dest, Tag{tag}, src.size};
    }
  }
  RequestState r(RequestState::Kind::send);
  start_send(&r, comm, dest, tag, std::move(src));
  return wait(r);
}

Status Engine::recv(std::uint32_t comm, int source, int tag, const RecvTarget& dst) {
  RequestState r(RequestState::Kind::recv);
  r.to = &dst;  // the caller's, alive until this returns
  start_recv(&r, comm, source, tag);
  return wait(r);
}

void Engine::start_send(RequestState* r, std::uint32_t comm, int dest, int tag,
                        SendSource src) {
  if (grouped(comm)) [[unlikely]] {
    dest = job_rank(comm, dest, "send to");
    r->group = group_of(comm);
  }
  if (dest < 0 || dest >= opt_.size)
    throw UsageError("send to rank " + std::to_string(dest) +
                     ", but the job has ranks 0 to " + std::to_string(opt_.size - 1));
  note_activity();
  r->engine = this;
  r->comm = comm;
  r->tag = tag;
  r->dest = dest;
  r->src = std::move(src);
  r->status = Status{dest, Tag{tag}, r->src.size};

  std::lock_guard lk(mu_);
  auto p = static_cast<std::size_t>(dest);
  if (!lost_[p].empty()) {
    fail(*r, lost_error("send to", dest));
    return;
  }
  if (!revoked_.empty()) [[unlikely]] {
    if (auto it = revoked_.find(comm); it != revoked_.end()) {
      fail(*r, revoked_error(it->second));
      return;
    }
  }
  if (r->src.size <= eager_[p]) {
    // Not done at once (queued): the transport completes it later, under this lock
    // (a handle dropped meanwhile hands the request its own ownership: adopt()).
    send_eager(dest, comm, tag, r->src, r);
  } else if (may_send_now(p, r->src.size) && eager_now(dest, comm, tag, r->src.data, r->src.size)) {
    r->complete({});  // the transport took all of it at once (eager_room_limit())
  } else {
    // cookie2: the sender's buffer, for single-copy reads
    proto::Header h{proto::Type::rts, comm, tag, r->src.size, next_id_++, reinterpret_cast<std::uintptr_t>(r->src.data)};
    send_frame(dest, h, nullptr, 0, nullptr);
    rdv_sends_.emplace(h.cookie, r);  // after the send: if it threw, nothing refers to r
  }
}

namespace {
proto::Header eager_header(std::uint32_t comm, int tag) {
  proto::Header h;
  h.type = proto::Type::eager;
  h.comm = comm;
  h.tag = tag;
  return h;
}
}  // namespace

[[gnu::always_inline]] inline bool Engine::eager_now(int dest, std::uint32_t comm, int tag, const void* data,
                                                     std::size_t size) {
  proto::Encoded head;
  proto::encode(eager_header(comm, tag), head);
  return opt_.route[static_cast<std::size_t>(dest)]->send_now(wire::Frame{head.span(), data, size, proto::concern_of(comm)});
}

void Engine::send_eager(int dest, std::uint32_t comm, int tag, const SendSource& src, transport::Completion* done) {
  send_frame(dest, eager_header(comm, tag), src.data, src.size, done);
}

void Engine::bad_source(int source, const char* op) const {
  throw UsageError(std::string(op) + " rank " + std::to_string(source) + ", but the job has ranks 0 to " +
                   std::to_string(opt_.size - 1));
}

void Engine::start_recv(RequestState* r, std::uint32_t comm, int source, int tag) {
  start_recv_here(r, comm, source, tag);
}

[[gnu::always_inline]] inline void Engine::start_recv_here(RequestState* r, std::uint32_t comm, int source, int tag) {
  if (grouped(comm)) [[unlikely]] {
    source = job_rank(comm, source, "receive from");
    r->group = group_of(comm);
  }
  check_source(source, "receive from");
  note_activity();
  r->engine = this;
  r->comm = comm;
  r->source = source;
  r->tag = tag;

  std::lock_guard lk(mu_);
  if (!revoked_.empty()) [[unlikely]] {
    if (auto it = revoked_.find(comm); it != revoked_.end()) {
      fail(*r, revoked_error(it->second));
      return;
    }
  }
  if (auto u = queues_.take_unexpected(comm, source, tag)) {
    if (u->rendezvous)
      accept_rendezvous(r, u->env, u->cookie, u->remote, u->size);
    else
      deliver_eager(*r, *u);
    return;
  }
  if (source != kAnySource && !lost_[static_cast<std::size_t>(source)].empty()) {
    fail(*r, lost_error("receive from", source));
    return;
  }
  queues_.post(comm, source, tag, r);
}

void Engine::cancel_recv(RequestState& r) {
  {
    std::lock_guard lk(mu_);
    if (queues_.remove_posted_if([&](RequestState* p) { return p == &r; })) {
      // As any completion (a request that owns itself lets go of itself then).
      fail(r, std::make_exception_ptr(UsageError("receive cancelled")));
      return;
    }
  }
  // Already matched: its payload is on the way (or the request failed); let it land.
  block_until([&] { return r.done.load(std::memory_order_seq_cst); });
}

void Engine::deliver_eager(RequestState& r, const Unexpected& u) {
  r.status = Status{u.env.source, Tag{u.env.tag}, u.size};
  place(r, u.size);
  if (u.size && r.dst) base::copy_bytes(r.dst, u.payload(), u.size);
  mark_done(r);
}

void Engine::accept_rendezvous(RequestState* r, const Envelope& env, std::uint64_t cookie,
                               std::uint64_t remote, std::size_t size) {
  r->status = Status{env.source, Tag{env.tag}, size};
  auto src = static_cast<std::size_t>(env.source);
  if (!lost_[src].empty()) {
    fail(*r, lost_error("receive from", env.source));
    return;
  }
  place(*r, size);
  transport::Endpoint& ep = *opt_.route[src];
  // Not while this rank sends a large message to the sender: both CPUs copy then
  // already (both ways at once, 1 MiB: 0.91 of the bandwidth with the parts shared).
  if (remote && r->dst && (ep.caps() & transport::kSharedCopy) &&
      std::none_of(rdv_sends_.begin(), rdv_sends_.end(), [&](const auto& s) { return s.second->dest == env.source; })) {
    int slot = ep.offer(cookie, size);
    if (slot >= 0 && copy_shared(r, env, ep, slot, cookie, remote, size)) return;
  }
  if (remote && (ep.caps() & transport::kOneSidedRead)) {
    // One copy, straight from the sender's buffer: at the end of the poll when this is
    // one (with the others it matched), else now.
    if (r->dst && poll_depth_ > 0) {
      reads_.push_back({r, &ep, env.source, env.comm, env.tag, cookie, remote});
      return;
    }
    if (!r->dst || ep.read(remote, r->dst, size)) {
      end_read(*r, env.source, env.comm, env.tag, cookie);
      return;
    }
  }
  ask_for_data(r, env.source, env.comm, env.tag, cookie);
}

void Engine::ask_for_data(RequestState* r, int peer, std::uint32_t comm, int tag, std::uint64_t cookie) {
  std::uint64_t id = r->rdv_id = next_id_++;
  rdv_recvs_.emplace(id, r);
  send_frame(peer, proto::Header{proto::Type::cts, comm, tag, r->status.bytes, cookie, id}, nullptr, 0, nullptr);
}

// The reads queued by accept_rendezvous during a poll, each sender's together. A piece
// that cannot be read is tried alone (read() drops the single copy on a refusal) and
// then asked for as data, as accept_rendezvous does. Completions may post receives,
// which read at once (not inside a poll), or poll: what that queues is made here too.
void Engine::flush_reads() {
  while (!reads_.empty()) {
    reading_.swap(reads_);
    for (std::size_t i = 0; i < reading_.size();) {
      transport::Endpoint* ep = reading_[i].ep;
      std::size_t j = i;
      read_pieces_.clear();
      for (; j < reading_.size() && reading_[j].ep == ep; ++j)
        read_pieces_.push_back({reading_[j].remote, reading_[j].r->dst, reading_[j].r->status.bytes});
      std::size_t there = lost_[static_cast<std::size_t>(reading_[i].peer)].empty() && (ep->caps() & transport::kOneSidedRead)
                              ? ep->read_many(read_pieces_.data(), read_pieces_.size())
                              : 0;
      for (std::size_t k = i; k < j; ++k) {
        PendingRead& p = reading_[k];
        if (!lost_[static_cast<std::size_t>(p.peer)].empty())
          fail(*p.r, lost_error("receive from", p.peer));
        else if (k < i + there || ((ep->caps() & transport::kOneSidedRead) && ep->read(p.remote, p.r->dst, p.r->status.bytes)))
          end_read(*p.r, p.peer, p.comm, p.tag, p.cookie);
        else
          ask_for_data(p.r, p.peer, p.comm, p.tag, p.cookie);
      }
      i = j;
    }
    reading_.clear();
  }
}

// Both sides copy (transport::kSharedCopy): the offer of the second part goes to the
// sender first, so that it writes while this side reads the first; then the offer is
// taken back if the sender has not claimed it (busy elsewhere, asleep), and this side
// reads the rest itself. A claimed part ends the receive when the sender says it is
// written (on_written); the sender's buffer is let go of (fin) only then. False when
// the first read failed and the offer was taken back (the payload comes as data).
bool Engine::copy_shared(RequestState* r, const Envelope& env, transport::Endpoint& ep, int slot,
                         std::uint64_t cookie, std::uint64_t remote, std::size_t size) {
  const std::uint64_t id = next_id_++;
  const auto part = static_cast<std::size_t>(proto::shared_part(size));
  send_frame(env.source,
             proto::Header{proto::Type::share, env.comm, slot, id, cookie, reinterpret_cast<std::uintptr_t>(r->dst)},
             nullptr, 0, nullptr);
  bool ok = ep.read(remote, r->dst, part);
  if (ep.take_back(slot, cookie)) {
    if (!ok || !ep.read(remote + part, static_cast<std::byte*>(r->dst) + part, size - part)) return false;
    end_read(*r, env.source, env.comm, env.tag, cookie);
    return true;
  }
  r->rdv_id = id;
  r->rdv_cookie = cookie;
  r->rdv_remote = remote;
  r->shared_slot = static_cast<std::int8_t>(slot);
  r->shared_ok = ok;
  rdv_recvs_.emplace(id, r);  // (a peer lost meanwhile fails it there)
  return true;
}

// The sender wrote its part (or declined: h.size 0): the receive ends, or this side
// reads the rest; a first part that failed comes as data (a clear-to-send for all).
const char* Engine::on_written(int peer, const proto::Header& h) {
  auto it = rdv_recvs_.find(h.cookie);
  if (it == rdv_recvs_.end() || it->second->status.source != peer || it->second->shared_slot < 0)
    return "part written for no receive of this rank";
  RequestState* r = it->second;
  transport::Endpoint& ep = *opt_.route[static_cast<std::size_t>(peer)];
  ep.free_offer(r->shared_slot);
  r->shared_slot = -1;
  const std::size_t size = r->status.bytes;
  const auto part = static_cast<std::size_t>(proto::shared_part(size));
  if (h.size != 0 && h.size != size - part) return "part written of the wrong size";
  bool ok = r->shared_ok && (h.size != 0 || ep.read(r->rdv_remote + part, static_cast<std::byte*>(r->dst) + part,
                                                    size - part));
  if (!ok) {
    send_frame(peer, proto::Header{proto::Type::cts, r->comm, r->status.tag.value, size, r->rdv_cookie, r->rdv_id},
               nullptr, 0, nullptr);
    return nullptr;
  }
  rdv_recvs_.erase(it);
  end_read(*r, peer, r->comm, r->status.tag.value, r->rdv_cookie);
  return nullptr;
}

// A rendezvous payload read from the sender's memory is in: the receive ends, and the
// sender may let go of its buffer (fin).
// (The size is taken first: a request that owns itself lets go of itself as it completes.)
void Engine::end_read(RequestState& r, int peer, std::uint32_t comm, int tag, std::uint64_t cookie) {
  const std::uint64_t size = r.status.bytes;
  mark_done(r);
  send_frame(peer, proto::Header{proto::Type::fin, comm, tag, size, cookie, 0}, nullptr, 0, nullptr);
}

// The posted receive an eager message of `length` bytes from `e` goes to, its status set
// and its destination placed; null when none is posted.
RequestState* Engine::take_eager(const Envelope& e, std::uint64_t length) {
  auto p = queues_.take_posted(e);
  if (!p) return nullptr;
  RequestState& r = **p;
  r.status = Status{e.source, Tag{e.tag}, length};
  place(r, length);
  return &r;
}

transport::Sink::Placement Engine::on_frame(int peer, std::span<const std::byte> head, std::uint64_t length) {
  if (!lost_[static_cast<std::size_t>(peer)].empty()) return {};  // from a lost peer: dropped
  proto::Header h;
  if (const char* bad = proto::decode(head, length, opt_.limits, h)) return Placement::refuse(bad);
  if (!revoked_.empty() && h.type == proto::Type::eager && revoked_.count(h.comm)) [[unlikely]]
    return {};  // a step of an abandoned collective: dropped
  switch (h.type) {
    case proto::Type::eager: {
      Envelope e{h.comm, peer, h.tag};
      if (RequestState* r = take_eager(e, length)) return {r->dst, token_of(r, Into::posted)};
      auto* u = Unexpected::eager(e, length).release();
      return {u->payload(), token_of(u, Into::unexpected)};
    }
    case proto::Type::data: {
      auto it = rdv_recvs_.find(h.cookie);
      if (it == rdv_recvs_.end() || length != it->second->status.bytes)
        return Placement::refuse("rendezvous data for no receive of this size");
      return {it->second->dst, token_of(it->second, Into::rendezvous)};
    }
    default:
      if (const char* bad = on_control(peer, h)) return Placement::refuse(bad);
      return {};
  }
}

RequestState* Engine::take_rendezvous_send(std::uint64_t cookie, int peer) {
  auto it = rdv_sends_.find(cookie);
  if (it == rdv_sends_.end() || it->second->dest != peer) return nullptr;
  auto r = it->second;
  rdv_sends_.erase(it);
  return r;
}

// Control frames carry no payload: they are acted on as they arrive.
const char* Engine::on_control(int peer, const proto::Header& h) {
  switch (h.type) {
    case proto::Type::rts: {
      Envelope e{h.comm, peer, h.tag};
      if (!revoked_.empty() && revoked_.count(h.comm)) {
        send_frame(peer, proto::Header{proto::Type::fin, h.comm, h.tag, h.size, h.cookie, 0}, nullptr, 0, nullptr);
        return nullptr;  // declined: the sender's request ends, nothing moves
      }
      if (auto p = queues_.take_posted(e)) {
        accept_rendezvous(*p, e, h.cookie, h.cookie2, h.size);
      } else {
        auto u = std::make_unique<Unexpected>();
        u->env = e;
        u->size = h.size;
        u->rendezvous = true;
        u->cookie = h.cookie;
        u->remote = h.cookie2;
        queues_.add_unexpected(std::move(u));
      }
      return nullptr;
    }
    case proto::Type::cts: {
      auto r = take_rendezvous_send(h.cookie, peer);
      if (!r) return "clear-to-send for no request of this rank";
      proto::Header d{proto::Type::data, h.comm, r->tag, r->src.size, h.cookie2, 0};
      send_frame(peer, d, r->src.data, r->src.size, r);
      return nullptr;
    }
    case proto::Type::fin: {
      auto r = take_rendezvous_send(h.cookie, peer);
      if (!r) return "read-finished for no request of this rank";
      mark_done(*r);
      return nullptr;
    }
    case proto::Type::share: {
      auto it = rdv_sends_.find(h.cookie);
      if (it == rdv_sends_.end() || it->second->dest != peer || h.cookie2 == 0)
        return "offer of a part for no request of this rank";
      RequestState* s = it->second;
      transport::Endpoint& ep = *opt_.route[static_cast<std::size_t>(peer)];
      if (ep.claim(h.tag, h.cookie)) {  // (else taken back: the receiver reads it all)
        const std::size_t size = s->src.size;
        const auto part = static_cast<std::size_t>(proto::shared_part(size));
        bool ok = ep.write(h.cookie2 + part, static_cast<const std::byte*>(s->src.data) + part, size - part);
        send_frame(peer, proto::Header{proto::Type::written, h.comm, 0, ok ? size - part : 0, h.size, 0}, nullptr, 0,
                   nullptr);
      }
      return nullptr;
    }
    case proto::Type::written:
      return on_written(peer, h);
    case proto::Type::abort:
      if (h.tag < -1 || h.tag >= opt_.size) return "abort naming no rank of the job";
      revoke_locked(h.comm, h.tag, peer);
      return nullptr;
    default:
      return "unexpected frame type";
  }
}

void Engine::on_frame_done(int peer, void* token) {
  if (!token) return;  // a control frame, acted on at arrival
  if (!lost_[static_cast<std::size_t>(peer)].empty()) {
    if (kind_of(token) == Into::unexpected) delete object_of<Unexpected>(token);
    return;
  }
  switch (kind_of(token)) {
    case Into::posted:
      mark_done(*object_of<RequestState>(token));
      return;
    case Into::unexpected: {
      std::unique_ptr<Unexpected> u(object_of<Unexpected>(token));
      if (auto p = queues_.take_posted(u->env))
        deliver_eager(**p, *u);
      else
        queues_.add_unexpected(std::move(u));
      return;
    }
    case Into::rendezvous: {
      auto it = rdv_recvs_.find(object_of<RequestState>(token)->rdv_id);
      if (it == rdv_recvs_.end()) return;
      auto* r = it->second;
      rdv_recvs_.erase(it);
      mark_done(*r);
      return;
    }
  }
}

// A small frame in one piece (a shared-memory record of one line): an eager message is
// matched, copied and completed in this one call; anything else goes the way of
// on_frame and on_frame_done. Under the lock throughout, so no receive can be posted
// between the match and the queueing of an unexpected message.
const char* Engine::on_whole(int peer, std::span<const std::byte> head, const std::byte* payload,
                             std::uint64_t length) {
  if (!lost_[static_cast<std::size_t>(peer)].empty()) return nullptr;  // from a lost peer: dropped
  proto::Header h;
  if (const char* bad = proto::decode(head, length, opt_.limits, h)) return bad;
  if (h.type != proto::Type::eager || !revoked_.empty()) [[unlikely]]
    return Sink::on_whole(peer, head, payload, length);
  Envelope e{h.comm, peer, h.tag};
  if (RequestState* r = take_eager(e, length)) {
    if (length && r->dst) base::copy_small(r->dst, payload, length);
    mark_done(*r);
    return nullptr;
  }
  auto u = Unexpected::eager(e, length);
  if (length) base::copy_bytes(u->payload(), payload, length);
  queues_.add_unexpected(std::move(u));
  return nullptr;
}

void Engine::on_frame_aborted(int peer, void* token) {
  if (!token) return;
  switch (kind_of(token)) {
    case Into::unexpected:
      delete object_of<Unexpected>(token);
      return;
    case Into::posted: {  // a posted receive matched at its header
      auto* r = object_of<RequestState>(token);
      fail(*r, std::make_exception_ptr(PeerLost(
                   "receive from " + where(peer) + " failed: the rank was lost during the message",
                   peer)));
      return;
    }
    case Into::rendezvous:  // still in rdv_recvs_: failed by on_peer_lost, which follows
      return;
  }
}

void Engine::on_peer_lost(int peer, const std::string& why) {
  auto p = static_cast<std::size_t>(peer);
  if (p >= lost_.size() || !lost_[p].empty()) return;
  lost_[p] = why.empty() ? "connection lost" : why;
  gone_[p].store(true, std::memory_order_release);
  auto err = [&](const char* op) { return lost_error(op, peer); };
  for (auto& r : queues_.take_posted_from(peer)) fail(*r, err("receive from"));
  // Its announced (rendezvous) messages can never be fetched; its eager ones stay.
  queues_.drop_unexpected_if([peer](const Unexpected& u) { return u.rendezvous && u.env.source == peer; });
  for (auto it = rdv_sends_.begin(); it != rdv_sends_.end();) {
    if (it->second->dest == peer) {
      fail(*it->second, err("send to"));
      it = rdv_sends_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = rdv_recvs_.begin(); it != rdv_recvs_.end();) {
    if (it->second->status.source == peer) {
      fail(*it->second, err("receive from"));
      it = rdv_recvs_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string Engine::revoke(std::uint32_t comm, int lost) {
  std::lock_guard lk(mu_);
  return revoke_locked(comm, lost, -1);
}

std::exception_ptr Engine::revoked_error(const Revoked& rv) const {
  return std::make_exception_ptr(
      PeerLost("a collective step failed: the communicator's collectives were abandoned: " + rv.why,
               rv.lost));
}

void Engine::decline(const Unexpected& u) {
  if (lost_[static_cast<std::size_t>(u.env.source)].empty())
    send_frame(u.env.source, proto::Header{proto::Type::fin, u.env.comm, u.env.tag, u.size, u.cookie, 0}, nullptr, 0,
               nullptr);
}

std::string Engine::revoke_locked(std::uint32_t comm, int lost, int reporter) {
  if (auto it = revoked_.find(comm); it != revoked_.end()) return it->second.why;
  bool known = lost >= 0 && lost < opt_.size;
  std::string why = known ? where(lost) + " is gone" : "a rank is gone";
  if (reporter >= 0)
    why += " (reported by " + where(reporter) + ")";
  else if (known && !lost_[static_cast<std::size_t>(lost)].empty())
    why += " (" + lost_[static_cast<std::size_t>(lost)] + ")";
  const Revoked& rv = revoked_.emplace(comm, Revoked{known ? lost : -1, why}).first->second;
  auto err = revoked_error(rv);
  for (auto& r : queues_.take_posted_on(comm)) fail(*r, err);
  // Steps that arrived early: eager ones are dropped; announced ones are declined, so
  // that their senders (waiting for an answer) go on. Receives already fetching data
  // (rdv_recvs_) complete as the data lands: their senders are not abandoned.
  queues_.drop_unexpected_if([&](const Unexpected& u) {
    if (u.env.comm != comm) return false;
    if (u.rendezvous) decline(u);
    return true;
  });
  if (reporter < 0) {
    // The rank that saw the loss tells every other: they may wait on ranks that are
    // alive but have given up, and never hear from the lost one themselves.
    proto::Header h{proto::Type::abort, comm, rv.lost, 0, 0, 0};
    const Group* g = grouped(comm) ? group_of(comm) : nullptr;  // only its members use the context
    for (int p = 0; p < opt_.size; ++p) {
      if (p == opt_.rank || !lost_[static_cast<std::size_t>(p)].empty()) continue;
      if (g && g->local[static_cast<std::size_t>(p)] < 0) continue;
      try {
        send_frame(p, h, nullptr, 0, nullptr);
      } catch (const std::exception&) {
        // unreachable: it fails on its own, or has failed already
      }
    }
  }
  return why;
}

std::optional<Status> Engine::iprobe(std::uint32_t comm, int source, int tag) {
  source = job_rank(comm, source, "probe for a message from");
  check_source(source, "probe for a message from");
  std::lock_guard lk(mu_);
  progress_locked();
  if (auto* u = queues_.peek_unexpected(comm, source, tag))
    return Status{local_rank(comm, u->env.source), Tag{u->env.tag}, u->size};
  return std::nullopt;
}

int Engine::local_rank(std::uint32_t comm, int job) const {
  if (!grouped(comm)) return job;
  const Group* g = group_of(comm);
  return g && job >= 0 && job < opt_.size ? g->local[static_cast<std::size_t>(job)] : job;
}

Status Engine::probe(std::uint32_t comm, int source, int tag) {
  source = job_rank(comm, source, "probe for a message from");
  check_source(source, "probe for a message from");
  OpNote& note = op_note();
  const char* outer = note.what;
  note.what = "probe (for a message to arrive)";
  struct Restore {
    OpNote& n;
    const char* w;
    ~Restore() { n.what = w; }
  } restore{note, outer};
  std::optional<Status> found;
  block_until([&] {
    std::lock_guard lk(mu_);
    if (auto* u = queues_.peek_unexpected(comm, source, tag)) {
      found = Status{u->env.source, Tag{u->env.tag}, u->size};
      return true;
    }
    if (source != kAnySource && !lost_[static_cast<std::size_t>(source)].empty())
      std::rethrow_exception(lost_error("probe for", source));
    return false;
  });
  found->source = local_rank(comm, found->source);
  return *found;
}

}  // namespace ipc::detail
