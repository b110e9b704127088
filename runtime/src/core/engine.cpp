#include "core/engine.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>

#include "core/pool.hpp"
#include "base/errors.hpp"

namespace ipc::detail {
namespace {

// Tokens handed to transports: a request, or (low bit set) an unexpected message.
void* token_of(RequestState* r) { return r; }
void* token_of(Unexpected* u) { return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(u) | 1); }
bool is_unexpected(void* t) { return (reinterpret_cast<std::uintptr_t>(t) & 1) != 0; }
Unexpected* as_unexpected(void* t) {
  return reinterpret_cast<Unexpected*>(reinterpret_cast<std::uintptr_t>(t) & ~std::uintptr_t{1});
}

}  // namespace

void RequestState::complete(const std::error_code& ec) {
  auto hold = std::move(keep);
  if (ec && !error)
    error = std::make_exception_ptr(PeerLost("send to rank " + std::to_string(dest) + " failed: " + ec.message()));
  engine->mark_done(*this);
}

Engine::Engine(Options opt)
    : opt_(std::move(opt)), lost_(static_cast<std::size_t>(opt_.size)), asymmetric_(asymmetric_barriers()) {
  transports_.push_back(opt_.self);
  for (auto* t : opt_.route)
    if (t && std::find(transports_.begin(), transports_.end(), t) == transports_.end()) transports_.push_back(t);
  for (auto* t : transports_)
    if (t->wait_fd() >= 0) sleeper_.watch(t->wait_fd());
  if (opt_.progress_thread && opt_.size > 1) progress_ = std::thread([this] { progress_thread_main(); });
}

Engine::~Engine() { shutdown(); }

std::string Engine::where(int peer) const {
  std::string s = "rank " + std::to_string(peer);
  if (peer >= 0 && static_cast<std::size_t>(peer) < opt_.peer_nodes.size() && !opt_.peer_nodes[peer].empty())
    s += " on " + opt_.peer_nodes[peer];
  return s;
}

std::exception_ptr Engine::lost_error(const char* op, int peer) const {
  return std::make_exception_ptr(PeerLost("rank " + std::to_string(opt_.rank) + ": " + op + " " + where(peer) +
                                          " failed: the rank is gone (" + lost_[static_cast<std::size_t>(peer)] +
                                          ")"));
}

wire::FrameHeader Engine::frame(wire::FrameType type, std::uint32_t comm, int tag, std::uint64_t size,
                                std::uint64_t cookie, std::uint64_t cookie2) const {
  wire::FrameHeader h;
  h.type = type;
  h.comm = comm;
  h.source = opt_.rank;
  h.tag = tag;
  h.size = size;
  h.cookie = cookie;
  h.cookie2 = cookie2;
  return h;
}

// Marks `r` done, then wakes a sleeping waiter. The store must be ordered before the
// load of the sleeper count (a waiter counts itself, then checks `done`): a full
// barrier per completion, unless sleepers pay for it with a membarrier (see Sleeper).
void Engine::mark_done(RequestState& r) { signal_done(r.done); }

void Engine::signal_done(std::atomic<bool>& done) {
  if (asymmetric_) {
    done.store(true, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    done.store(true, std::memory_order_seq_cst);
  }
  sleeper_.ring();
}

void Engine::fail(RequestState& r, std::exception_ptr e) {
  if (!r.error) r.error = std::move(e);
  r.keep.reset();
  mark_done(r);
}

void Engine::place(RequestState& r, std::size_t size) {
  try {
    r.dst = r.to->destination(size);
  } catch (...) {
    r.error = std::current_exception();
    r.dst = nullptr;  // the transport reads and drops the payload: nothing is allocated
  }
}

std::shared_ptr<RequestState> Engine::isend(std::uint32_t comm, int dest, int tag, SendSource src) {
  auto r = std::allocate_shared<RequestState>(PoolAllocator<RequestState>{}, RequestState::Kind::send);
  start_send(r, comm, dest, tag, std::move(src));
  return r;
}

std::shared_ptr<RequestState> Engine::irecv(std::uint32_t comm, int source, int tag, RecvTarget dst) {
  auto r = std::allocate_shared<RequestState>(PoolAllocator<RequestState>{}, RequestState::Kind::recv);
  r->target.emplace(std::move(dst));
  r->to = &*r->target;
  start_recv(r, comm, source, tag);
  return r;
}

// Blocking calls keep their request on the stack: nothing refers to it once it is
// done, and the engine's references to it do not own it (a shared_ptr without a
// control block), so a blocking call allocates nothing.
Status Engine::send(std::uint32_t comm, int dest, int tag, SendSource src) {
  if (dest >= 0 && dest < opt_.size) {
    // An eager message needs no request: the transport sends or copies it before its
    // send returns (a large eager frame into a full ring excepted: waited for here).
    struct Sent final : transport::Completion {
      Engine* engine = nullptr;
      std::atomic<bool> done{false};
      std::error_code ec;
      void complete(const std::error_code& e) override {
        ec = e;
        engine->signal_done(done);
      }
    } sent;
    sent.engine = this;
    auto p = static_cast<std::size_t>(dest);
    bool eager = false;
    {
      std::lock_guard lk(mu_);
      transport::Transport* t = opt_.route[p];
      if (lost_[p].empty() && src.size <= t->eager_limit()) {
        eager = true;
        note_activity();
        send_eager(t, dest, comm, tag, src, &sent);
      }
    }
    if (eager) {
      if (!sent.done.load(std::memory_order_acquire))
        block_until([&] { return sent.done.load(std::memory_order_seq_cst); });
      if (sent.ec)
        throw PeerLost("rank " + std::to_string(opt_.rank) + ": send to " + where(dest) + " failed: " +
                       sent.ec.message());
      return Status{dest, Tag{tag}, src.size};
    }
  }
  RequestState r(RequestState::Kind::send);
  start_send(std::shared_ptr<RequestState>(std::shared_ptr<RequestState>(), &r), comm, dest, tag, std::move(src));
  return wait(r);
}

Status Engine::recv(std::uint32_t comm, int source, int tag, const RecvTarget& dst) {
  RequestState r(RequestState::Kind::recv);
  r.to = &dst;  // the caller's, alive until this returns
  start_recv(std::shared_ptr<RequestState>(std::shared_ptr<RequestState>(), &r), comm, source, tag);
  return wait(r);
}

void Engine::start_send(const std::shared_ptr<RequestState>& r, std::uint32_t comm, int dest, int tag,
                        SendSource src) {
  if (dest < 0 || dest >= opt_.size)
    throw UsageError("rank " + std::to_string(opt_.rank) + ": send to rank " + std::to_string(dest) +
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
  transport::Transport* t = opt_.route[p];
  if (r->src.size <= t->eager_limit()) {
    send_eager(t, dest, comm, tag, r->src, r.get());
    // Not done at once (queued): the transport completes it later, under this lock,
    // and the request must live until then.
    if (!r->done.load(std::memory_order_relaxed)) r->keep = r;
  } else {
    // cookie2: the sender's buffer, for single-copy reads
    auto h = frame(wire::FrameType::rts, comm, tag, r->src.size, next_id_++,
                   reinterpret_cast<std::uintptr_t>(r->src.data));
    t->send(dest, h, nullptr, nullptr);
    rdv_sends_.emplace(h.cookie, r);  // after the send: if it threw, nothing refers to r
  }
}

void Engine::send_eager(transport::Transport* t, int dest, std::uint32_t comm, int tag, const SendSource& src,
                        transport::Completion* done) {
  auto h = frame(wire::FrameType::eager, comm, tag, src.size);
  h.length = src.size;
  t->send(dest, h, src.data, done);
}

void Engine::start_recv(const std::shared_ptr<RequestState>& r, std::uint32_t comm, int source, int tag) {
  if (source != kAnySource && (source < 0 || source >= opt_.size))
    throw UsageError("rank " + std::to_string(opt_.rank) + ": receive from rank " + std::to_string(source) +
                     ", but the job has ranks 0 to " + std::to_string(opt_.size - 1));
  note_activity();
  r->engine = this;
  r->comm = comm;
  r->source = source;
  r->tag = tag;

  std::lock_guard lk(mu_);
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
    if (queues_.remove_posted_if([&](const Posted& p) { return p.get() == &r; })) {
      r.error = std::make_exception_ptr(UsageError("receive cancelled"));
      r.done.store(true, std::memory_order_seq_cst);
      return;
    }
  }
  // Already matched: its payload is on the way (or the request failed); let it land.
  block_until([&] { return r.done.load(std::memory_order_seq_cst); });
}

void Engine::deliver_eager(RequestState& r, const Unexpected& u) {
  r.status = Status{u.env.source, Tag{u.env.tag}, u.size};
  place(r, u.size);
  if (u.size && r.dst) std::memcpy(r.dst, u.payload(), u.size);
  mark_done(r);
}

void Engine::accept_rendezvous(const std::shared_ptr<RequestState>& r, const Envelope& env, std::uint64_t cookie,
                               std::uint64_t remote, std::size_t size) {
  r->status = Status{env.source, Tag{env.tag}, size};
  auto src = static_cast<std::size_t>(env.source);
  if (!lost_[src].empty()) {
    fail(*r, lost_error("receive from", env.source));
    return;
  }
  place(*r, size);
  transport::Transport* t = opt_.route[src];
  if (remote && t->can_read(env.source) && (!r->dst || t->read(env.source, remote, r->dst, size))) {
    // One copy, straight from the sender's buffer; tell the sender it may go on.
    mark_done(*r);
    t->send(env.source, frame(wire::FrameType::fin, env.comm, env.tag, size, cookie), nullptr, nullptr);
    return;
  }
  std::uint64_t id = next_id_++;
  rdv_recvs_.emplace(id, r);
  t->send(env.source, frame(wire::FrameType::cts, env.comm, env.tag, size, cookie, id), nullptr, nullptr);
}

transport::Sink::Placement Engine::on_frame(int peer, const wire::FrameHeader& h) {
  if (!lost_[static_cast<std::size_t>(peer)].empty()) return {};  // from a lost peer: dropped
  switch (h.type) {
    case wire::FrameType::eager: {
      Envelope e{h.comm, peer, h.tag};
      if (auto p = queues_.take_posted(e)) {
        RequestState& r = **p;
        r.status = Status{peer, Tag{h.tag}, h.length};
        place(r, h.length);
        r.keep = std::move(*p);
        return {r.dst, token_of(&r)};
      }
      auto* u = Unexpected::eager(e, h.length).release();
      return {u->payload(), token_of(u)};
    }
    case wire::FrameType::data: {
      auto it = rdv_recvs_.find(h.cookie);
      if (it != rdv_recvs_.end() && h.length == it->second->status.bytes) return {it->second->dst, nullptr};
      std::cerr << "ipc: rank " << opt_.rank << ": unexpected rendezvous data from " << where(peer)
                << " (dropped)" << std::endl;
      return {};
    }
    default:
      return {};
  }
}

void Engine::on_frame_done(int peer, const wire::FrameHeader& h, void* token) {
  if (!lost_[static_cast<std::size_t>(peer)].empty()) {
    if (is_unexpected(token)) delete as_unexpected(token);
    return;
  }
  switch (h.type) {
    case wire::FrameType::eager: {
      if (!is_unexpected(token)) {
        auto* r = static_cast<RequestState*>(token);
        auto hold = std::move(r->keep);
        mark_done(*r);
        return;
      }
      std::unique_ptr<Unexpected> u(as_unexpected(token));
      if (auto p = queues_.take_posted(u->env))
        deliver_eager(**p, *u);
      else
        queues_.add_unexpected(std::move(u));
      return;
    }
    case wire::FrameType::rts: {
      Envelope e{h.comm, peer, h.tag};
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
      return;
    }
    case wire::FrameType::cts: {
      auto it = rdv_sends_.find(h.cookie);
      if (it == rdv_sends_.end()) {
        std::cerr << "ipc: rank " << opt_.rank << ": clear-to-send for an unknown request from " << where(peer)
                  << std::endl;
        return;
      }
      auto r = std::move(it->second);
      rdv_sends_.erase(it);
      auto d = frame(wire::FrameType::data, h.comm, r->tag, r->src.size, h.cookie2);
      d.length = r->src.size;
      RequestState* raw = r.get();
      raw->keep = std::move(r);
      opt_.route[static_cast<std::size_t>(peer)]->send(peer, d, raw->src.data, raw);
      return;
    }
    case wire::FrameType::data: {
      auto it = rdv_recvs_.find(h.cookie);
      if (it == rdv_recvs_.end()) return;
      auto r = std::move(it->second);
      rdv_recvs_.erase(it);
      mark_done(*r);
      return;
    }
    case wire::FrameType::fin: {
      auto it = rdv_sends_.find(h.cookie);
      if (it == rdv_sends_.end()) return;
      auto r = std::move(it->second);
      rdv_sends_.erase(it);
      mark_done(*r);
      return;
    }
  }
}

void Engine::on_frame_aborted(int peer, const wire::FrameHeader& h, void* token) {
  if (is_unexpected(token)) {
    delete as_unexpected(token);
    return;
  }
  if (h.type == wire::FrameType::eager && token) {  // a posted receive matched at its header
    auto* r = static_cast<RequestState*>(token);
    auto hold = std::move(r->keep);
    fail(*r, std::make_exception_ptr(PeerLost("rank " + std::to_string(opt_.rank) + ": receive from " + where(peer) +
                                              " failed: the rank was lost during the message")));
  }
  // data frames: the request is in rdv_recvs_, failed by on_peer_lost, which follows.
}

void Engine::on_peer_lost(int peer, const std::string& why) {
  auto p = static_cast<std::size_t>(peer);
  if (p >= lost_.size() || !lost_[p].empty()) return;
  lost_[p] = why.empty() ? "connection lost" : why;
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

std::optional<Status> Engine::iprobe(std::uint32_t comm, int source, int tag) {
  std::lock_guard lk(mu_);
  progress_locked();
  if (auto* u = queues_.peek_unexpected(comm, source, tag)) return Status{u->env.source, Tag{u->env.tag}, u->size};
  return std::nullopt;
}

Status Engine::probe(std::uint32_t comm, int source, int tag) {
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
  return *found;
}

}  // namespace ipc::detail
