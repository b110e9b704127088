#include "transport/shm/shm_transport.hpp"

#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/errors.hpp"
#include "base/names.hpp"
#include "transport/queued.hpp"

namespace ipc::transport::shm {
namespace {

constexpr std::size_t kPollBudget = 4u << 20;  // bytes per ring per poll, for fairness

// Eager frames this small travel as one 64-byte line: record head (16 B), envelope
// (16 B), payload (up to 32 B).
struct SmallEnvelope {
  std::uint32_t comm;
  std::int32_t source;
  std::int32_t tag;
  std::uint32_t reserved;
};
constexpr std::size_t kSmallMax = kLine - kRecordHead - sizeof(SmallEnvelope);

// The doorbell's abstract unix address (a leading NUL: no file, gone with the socket).
socklen_t bell_address(const std::string& name, sockaddr_un& a) {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  std::size_t n = std::min(name.size(), sizeof(a.sun_path) - 2);
  std::memcpy(a.sun_path + 1, name.data(), n);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

ShmTransport::ShmTransport(Options opt)
    : opt_(std::move(opt)), peers_(static_cast<std::size_t>(opt_.size)),
      inbound_(static_cast<std::size_t>(opt_.local_size)) {
  if (opt_.ring_bytes < 16 * kLine || opt_.ring_bytes % kLine != 0)
    throw Error("shm: IPC_SHM_RING=" + std::to_string(opt_.ring_bytes) + " must be a multiple of 64, at least 1024");
  if (opt_.chunk < 256)
    throw Error("shm: IPC_SHM_CHUNK=" + std::to_string(opt_.chunk) + " must be at least 256 bytes");
  own_ = Segment::create(base::segment_name(opt_.job, opt_.rank), static_cast<std::uint32_t>(opt_.local_size),
                         opt_.ring_bytes);
  for (std::uint32_t i = 0; i < inbound_.size(); ++i) {
    inbound_[i].control = own_.control(i);
    inbound_[i].data = own_.data(i);
    inbound_[i].ring = RingConsumer(own_.control(i), own_.data(i), opt_.ring_bytes);
  }
  RingProducer probe(own_.control(0), own_.data(0), opt_.ring_bytes);
  if (opt_.eager_limit + wire::kFrameHeaderSize > probe.max_body())
    opt_.eager_limit = probe.max_body() - wire::kFrameHeaderSize;

  bell_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bell_out_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un a;
  socklen_t len = bell_address(own_.name(), a);
  if (bell_ < 0 || bell_out_ < 0 || ::bind(bell_, reinterpret_cast<sockaddr*>(&a), len) != 0)
    throw Error("shm: cannot create the doorbell of " + own_.name() + ": " + std::strerror(errno));
}

ShmTransport::~ShmTransport() {
  if (bell_ >= 0) ::close(bell_);
  if (bell_out_ >= 0) ::close(bell_out_);
}

std::string ShmTransport::card() const { return own_.name() + "," + std::to_string(opt_.local_rank); }

bool ShmTransport::reaches(const PeerCard& me, const PeerCard& peer) const {
  return peer.cards.count("shm") > 0 && peer.node == me.node && peer.boot_id == me.boot_id;
}

void ShmTransport::add_peer(const PeerCard& peer) {
  const std::string& card = peer.cards.at("shm");
  auto comma = card.rfind(',');
  int local = comma == std::string::npos ? -1 : std::atoi(card.c_str() + comma + 1);
  if (local < 0 || local >= opt_.local_size)
    throw Error("shm: the card of rank " + std::to_string(peer.rank) + " names local rank " + std::to_string(local) +
                " outside this node's " + std::to_string(opt_.local_size));
  auto p = std::make_unique<Peer>();
  p->rank = peer.rank;
  p->pid = peer.pid;
  p->cma = opt_.cma;
  p->segment = Segment::open(card.substr(0, comma));
  if (p->segment.header()->rings != static_cast<std::uint32_t>(opt_.local_size))
    throw Error("shm: segment " + p->segment.name() + " has " + std::to_string(p->segment.header()->rings) +
                " rings, this node has " + std::to_string(opt_.local_size) + " ranks");
  auto mine = static_cast<std::uint32_t>(opt_.local_rank);
  p->out = RingProducer(p->segment.control(mine), p->segment.data(mine), p->segment.ring_bytes());
  p->bell_len = bell_address(p->segment.name(), p->bell);
  inbound_[static_cast<std::size_t>(local)].rank = peer.rank;
  peers_[static_cast<std::size_t>(peer.rank)] = std::move(p);
}

void ShmTransport::ring_bell(Peer& p) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (p.segment.header()->sleepers.load(std::memory_order_seq_cst) > 0) send_bell(p.bell, p.bell_len);
}

// Writes the first record of frame `h` (a one-line small record for a tiny eager
// frame, else header + as much payload as a record holds) and publishes it. Returns
// the payload bytes it carries, or npos when the ring has no room (`need`: the record's
// body size).
std::size_t ShmTransport::start_frame(Peer& p, const wire::FrameHeader& h, const std::byte* payload,
                                      std::size_t& need) {
  std::size_t n;
  std::byte* at;
  if (h.type == wire::FrameType::eager && h.length <= kSmallMax) {
    n = h.length;
    need = sizeof(SmallEnvelope) + n;
    if (!(at = p.out.reserve(RecordKind::small, need))) return npos;
    SmallEnvelope env{h.comm, h.source, h.tag, 0};
    std::memcpy(at, &env, sizeof env);
    at += sizeof env;
  } else {
    n = std::min<std::size_t>(h.length, std::min(p.out.max_body(), opt_.chunk) - wire::kFrameHeaderSize);
    need = wire::kFrameHeaderSize + n;
    if (!(at = p.out.reserve(RecordKind::frame, need))) return npos;
    std::memcpy(at, &h, wire::kFrameHeaderSize);
    at += wire::kFrameHeaderSize;
  }
  if (n) std::memcpy(at, payload, n);
  p.out.commit();
  return n;
}

// Moves queued frames of `p` into its ring while there is room. True when the queue
// emptied.
bool ShmTransport::push(Peer& p) {
  bool any = false;
  std::size_t max_body = std::min(p.out.max_body(), opt_.chunk);
  auto stall = [&](std::size_t body) {
    p.stalled_tail.store(p.out.tail(), std::memory_order_release);
    p.stalled.store(body, std::memory_order_release);
  };
  while (!p.queue.empty()) {
    Out& o = p.queue.front();
    if (!o.started) {
      std::size_t need = 0, first = start_frame(p, o.header, o.payload, need);
      if (first == npos) {
        stall(need);
        break;
      }
      o.sent = first;
      o.started = true;
      any = true;
    }
    while (o.sent < o.length) {
      std::size_t chunk = std::min(o.length - o.sent, max_body);
      std::byte* at = p.out.reserve(RecordKind::cont, chunk);
      if (!at) {
        stall(chunk);
        break;
      }
      std::memcpy(at, o.payload + o.sent, chunk);
      p.out.commit();
      o.sent += chunk;
      any = true;
    }
    if (o.sent < o.length) break;
    Completion* c = o.done;
    p.queue.pop_front();
    if (c) c->complete({});
  }
  if (any) ring_bell(p);
  if (p.queue.empty()) p.stalled.store(0, std::memory_order_release);
  return p.queue.empty();
}

void ShmTransport::send(int peer, const wire::FrameHeader& h, const void* payload, Completion* done) {
  Peer& p = *peers_[static_cast<std::size_t>(peer)];
  bool was_empty = p.queue.empty();
  if (was_empty && wire::kFrameHeaderSize + h.length <= std::min(p.out.max_body(), opt_.chunk)) {
    // Fast path: a frame that fits one record goes straight into the ring.
    std::size_t need = 0;
    if (start_frame(p, h, static_cast<const std::byte*>(payload), need) != npos) {
      ring_bell(p);
      if (done) done->complete({});
      return;
    }
  }
  Out o;
  o.header = h;
  o.payload = static_cast<const std::byte*>(payload);
  o.length = h.length;
  o.done = done;
  p.queue.push_back(std::move(o));
  if (was_empty && push(p)) return;
  if (was_empty) ++pending_peers_;
  Out& last = p.queue.back();
  if (last.done && !last.started && last.length <= opt_.eager_limit) detach_payload(last);  // waits for room
}

void ShmTransport::release(Inbound& in) {
  if (in.ring.release()) {
    auto& p = peers_[static_cast<std::size_t>(in.rank)];
    if (p) send_bell(p->bell, p->bell_len);
  }
}

void ShmTransport::send_bell(const sockaddr_un& a, socklen_t len) {
  char b = 1;
  [[maybe_unused]] auto r =
      ::sendto(bell_out_, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&a), len);
}

void ShmTransport::broken(Inbound& in, Sink& sink, const char* why) {
  in.broken = true;
  if (in.in_frame) {
    in.in_frame = false;
    sink.on_frame_aborted(in.rank, in.frame, in.place.token);
  }
  sink.on_peer_lost(in.rank, why);
}

bool ShmTransport::drain(Inbound& in, Sink& sink) {
  bool any = false, unreleased = false;
  std::size_t bytes = 0;
  while (!in.broken && bytes < kPollBudget) {
    const RecordHead* r = in.ring.front();
    if (!r) break;
    any = true;
    const std::byte* body = RingConsumer::body(r);
    std::size_t n = r->bytes;
    if (r->kind == RecordKind::small) {
      if (in.in_frame || n < sizeof(SmallEnvelope) || n - sizeof(SmallEnvelope) > kSmallMax) {
        broken(in, sink, "malformed record in shared memory");
        break;
      }
      SmallEnvelope env;
      std::memcpy(&env, body, sizeof env);
      in.frame = wire::FrameHeader{};
      in.frame.type = wire::FrameType::eager;
      in.frame.comm = env.comm;
      in.frame.source = env.source;
      in.frame.tag = env.tag;
      in.frame.length = in.frame.size = n - sizeof env;
      in.place = sink.on_frame(in.rank, in.frame);
      if (in.frame.length && in.place.data) std::memcpy(in.place.data, body + sizeof env, in.frame.length);
      // Space goes back once per drain, not per record: a release is a full barrier.
      in.ring.pop(r);
      unreleased = true;
      sink.on_frame_done(in.rank, in.frame, in.place.token);
      bytes += n;
      continue;
    }
    if (r->kind == RecordKind::frame) {
      if (in.in_frame || n < wire::kFrameHeaderSize ||
          wire::decode_header(std::span<const std::byte, wire::kFrameHeaderSize>(body, wire::kFrameHeaderSize),
                              opt_.limits, in.frame) != wire::FrameError::ok ||
          n - wire::kFrameHeaderSize > in.frame.length) {
        broken(in, sink, "malformed frame in shared memory");
        break;
      }
      in.place = sink.on_frame(in.rank, in.frame);
      in.got = 0;
      in.in_frame = true;
      body += wire::kFrameHeaderSize;
      n -= wire::kFrameHeaderSize;
    } else if (!in.in_frame || r->kind != RecordKind::cont || n > in.frame.length - in.got) {
      broken(in, sink, "malformed record in shared memory");
      break;
    }
    if (n && in.place.data) std::memcpy(static_cast<std::byte*>(in.place.data) + in.got, body, n);
    in.got += n;
    bytes += n;
    in.ring.pop(r);
    unreleased = true;
    if (in.got == in.frame.length) {
      in.in_frame = false;
      release(in);  // free the space before the engine reacts (it may send back)
      unreleased = false;
      sink.on_frame_done(in.rank, in.frame, in.place.token);
    }
  }
  if (unreleased) release(in);
  return any;
}

bool ShmTransport::poll(Sink& sink) {
  bool any = false;
  if (pending_peers_ > 0) {
    for (auto& p : peers_) {
      if (p && !p->queue.empty()) {
        any = true;
        if (push(*p)) --pending_peers_;
      }
    }
  }
  for (auto& in : inbound_)
    if (in.rank >= 0) any |= drain(in, sink);
  return any;
}

bool ShmTransport::idle() const { return pending_peers_ == 0; }

bool ShmTransport::can_read(int peer) const {
  auto& p = peers_.at(static_cast<std::size_t>(peer));
  return p && p->cma;
}

bool ShmTransport::read(int peer, std::uint64_t remote, void* dst, std::size_t n) {
  Peer& p = *peers_.at(static_cast<std::size_t>(peer));
  std::size_t done = 0;
  while (done < n) {
    iovec local{static_cast<std::byte*>(dst) + done, n - done};
    iovec far{reinterpret_cast<void*>(remote + done), n - done};
    ssize_t k = ::process_vm_readv(p.pid, &local, 1, &far, 1, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      p.cma = false;  // EPERM (ptrace rules), ENOSYS, ...: use the chunked path from now on
      return false;
    }
    done += static_cast<std::size_t>(k);
  }
  return true;
}

bool ShmTransport::arm_sleep() {
  own_.header()->sleepers.fetch_add(1, std::memory_order_seq_cst);
  for (auto& in : inbound_)
    if (in.rank >= 0 && !in.broken && RingConsumer::pending(in.control, in.data, opt_.ring_bytes)) return false;
  // Frames waiting for room: the receivers ring when they free some. (Called under
  // the progress lock, like every use of the queues.)
  if (pending_peers_.load(std::memory_order_acquire) > 0)
    for (auto& p : peers_)
      if (p) {
        std::size_t body = p->stalled.load(std::memory_order_acquire);
        if (body && !RingProducer::want_room(p->out.control(), p->out.capacity(),
                                             p->stalled_tail.load(std::memory_order_acquire), body))
          return false;
      }
  return true;
}

void ShmTransport::disarm_sleep() {
  own_.header()->sleepers.fetch_sub(1, std::memory_order_seq_cst);
  char buf[64];
  while (::recv(bell_, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

void ShmTransport::check_peers(Sink& sink) {
  for (auto& p : peers_) {
    if (!p || p->lost || p->pid <= 0) continue;
    if (::kill(p->pid, 0) == 0 || errno != ESRCH) continue;
    p->lost = true;
    for (auto& in : inbound_)
      if (in.rank == p->rank && in.in_frame) {
        in.in_frame = false;
        sink.on_frame_aborted(in.rank, in.frame, in.place.token);
      }
    auto q = std::move(p->queue);
    p->queue.clear();
    if (!q.empty()) --pending_peers_;  // else flush() would wait for it forever
    for (auto& o : q)
      if (o.done) o.done->complete(std::make_error_code(std::errc::connection_aborted));
    sink.on_peer_lost(p->rank, "its process (pid " + std::to_string(p->pid) + ") is gone");
  }
}

void ShmTransport::close() {
  own_.unlink();
  for (auto& p : peers_)
    if (p)
      for (auto& o : p->queue)
        if (o.done) o.done->complete(std::make_error_code(std::errc::connection_aborted));
  peers_.clear();
  pending_peers_ = 0;
}

}  // namespace ipc::transport::shm
