#include "transport/shm/shm_transport.hpp"

#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "base/check.hpp"
#include "base/copy.hpp"
#include "base/errors.hpp"
#include "base/fences.hpp"
#include "base/names.hpp"
#include "base/params.hpp"
#include "base/prefetch.hpp"
#include "transport/queued.hpp"
#include "transport/registry.hpp"

namespace ipc::transport::shm {
namespace {

constexpr std::size_t kPollBudget = 4u << 20;  // bytes per ring per poll, for fairness

// A `first` record starts with the frame's payload length.
constexpr std::size_t kLengthField = sizeof(std::uint64_t);

}  // namespace

ShmTransport::ShmTransport(Options opt)
    : opt_(std::move(opt)), peers_(static_cast<std::size_t>(opt_.size)),
      inbound_(static_cast<std::size_t>(opt_.local_size)) {
  if (opt_.ring_bytes < 16 * kLine || opt_.ring_bytes % kLine != 0)
    throw Error("shm: IPC_SHM_RING=" + std::to_string(opt_.ring_bytes) + " must be a multiple of 64, at least 1024");
  if (opt_.chunk < 256)
    throw Error("shm: IPC_SHM_CHUNK=" + std::to_string(opt_.chunk) + " must be at least 256 bytes");
  if (!opt_.doorbell) throw Error("shm: no doorbell to ring peers with");
  try {
    // Room for every ring of the node, should every pair talk: a job that cannot have
    // it is refused now, not stopped mid-way when a ring finds /dev/shm full.
    std::size_t one = segment_bytes(static_cast<std::uint32_t>(opt_.local_size), opt_.ring_bytes);
    base::Mapping::require_space(base::segment_name(opt_.job, opt_.rank), one,
                                 one * static_cast<std::size_t>(opt_.local_size));
    own_ = Segment::create(base::segment_name(opt_.job, opt_.rank), static_cast<std::uint32_t>(opt_.local_size),
                           opt_.ring_bytes);
  } catch (const Error& e) {
    std::string what = e.what();
    if (what.find(" in /dev/shm") == std::string::npos) throw;
    char total[32];
    std::snprintf(total, sizeof total, "%.1f MiB",
                  static_cast<double>(segment_bytes(static_cast<std::uint32_t>(opt_.local_size), opt_.ring_bytes)) *
                      opt_.local_size / (1 << 20));
    throw Error(what + " (each of the " + std::to_string(opt_.local_size) + " ranks on this host maps as much: " +
                total + " in all)");
  }
  for (std::uint32_t i = 0; i < inbound_.size(); ++i) {
    inbound_[i].control = own_.control(i);
    inbound_[i].data = own_.data(i);
    inbound_[i].ring = RingConsumer(own_.control(i), own_.data(i), opt_.ring_bytes);
  }
  RingProducer probe(own_.control(0), own_.data(0), opt_.ring_bytes);
  if (opt_.eager_limit + kLengthField + wire::kMaxHead > probe.max_body())
    opt_.eager_limit = probe.max_body() - kLengthField - wire::kMaxHead;
  // A frame that goes eagerly because the ring has room takes at most half of it.
  opt_.eager_room = std::min(opt_.eager_room, opt_.ring_bytes / 2);
  if (opt_.eager_room <= opt_.eager_limit) opt_.eager_room = 0;
  opt_.eager_drained = std::min(opt_.eager_drained, opt_.ring_bytes / 2);
  if (opt_.eager_drained <= opt_.eager_limit) opt_.eager_drained = 0;
}

ShmTransport::~ShmTransport() = default;

std::string ShmTransport::card() const {
  return own_.name() + "," + std::to_string(opt_.local_rank) + "," + std::to_string(own_.fd());
}

bool ShmTransport::reaches(const PeerCard& me, const PeerCard& peer) const {
  return peer.cards.count("shm") > 0 && peer.node == me.node && peer.boot_id == me.boot_id;
}

// The card: the segment's name, the local index of its owner and the owner's
// descriptor of it ("/ipc-...,3,7").
Endpoint& ShmTransport::connect(const PeerCard& peer) {
  const std::string& card = peer.cards.at("shm");
  auto second = card.rfind(',');
  auto first = second == std::string::npos || second == 0 ? std::string::npos : card.rfind(',', second - 1);
  auto number = [&](std::size_t from, std::size_t to) {  // the decimal field [from, to), or -1
    if (from >= to || to - from > 9) return -1;
    int v = 0;
    for (std::size_t i = from; i < to; ++i) {
      if (card[i] < '0' || card[i] > '9') return -1;
      v = v * 10 + (card[i] - '0');
    }
    return v;
  };
  IPC_ENFORCE(first != std::string::npos && first > 0,
              "shm: the card of rank " + std::to_string(peer.rank) + " is malformed: '" + card + "'");
  int local = number(first + 1, second), fd = number(second + 1, card.size());
  IPC_ENFORCE(local >= 0 && local < opt_.local_size && fd >= 0,
              "shm: the card of rank " + std::to_string(peer.rank) + " ('" + card + "') names local rank " +
                  std::to_string(local) + " of this node's " + std::to_string(opt_.local_size) + " and descriptor " +
                  std::to_string(fd));
  auto p = std::make_unique<Peer>(*this, peer.rank);
  p->pid = peer.pid;
  p->segment_name = card.substr(0, first);
  p->segment_fd = fd;
  if (opt_.cma) p->enable_read();
  // Mapped at the first use (Peer::map), through the owner's descriptor, where this
  // rank may open another's descriptors (tried once, on the first peer); else now, by
  // the name, which goes once every peer has connected (ready()).
  if (held_ < 0) held_ = base::Mapping::held_openable(p->pid, p->segment_fd) ? 1 : 0;
  if (!held_ && !p->map()) throw Error(p->fault);
  inbound_[static_cast<std::size_t>(local)].rank = peer.rank;
  p->bell = base::Doorbell::Address::of(base::doorbell_name(opt_.job, peer.rank));
  p->in = inbound_[static_cast<std::size_t>(local)].control;
  p->in_data = inbound_[static_cast<std::size_t>(local)].data;
  Peer& ep = *p;
  peers_[static_cast<std::size_t>(peer.rank)] = std::move(p);
  return ep;
}

// Maps the peer's segment, where this rank's outbound ring lies; false (`fault` says
// why) when it cannot be.
bool ShmTransport::Peer::map() {
  if (segment) return true;
  if (!fault.empty()) return false;
  try {
    segment = open_segment();
    if (segment.header()->rings != static_cast<std::uint32_t>(shm.opt_.local_size))
      throw Error("shm: segment " + segment.name() + " has " + std::to_string(segment.header()->rings) +
                  " rings, this node has " + std::to_string(shm.opt_.local_size) + " ranks");
  } catch (const Error& e) {
    segment = Segment{};
    fault = e.what();
    fault_code = std::errc::connection_aborted;
    return false;
  }
  auto mine = static_cast<std::uint32_t>(shm.opt_.local_rank);
  out = RingProducer(segment.control(mine), segment.data(mine), segment.ring_bytes(), shm.opt_.wrap_at,
                     shm.opt_.wrap_records, shm.opt_.wrap_answered_at, shm.opt_.prefetch_lines);
  return true;
}

// Through the owner's descriptor where this rank may open it, else (or when that
// fails) by the name, which lasts until the end of start-up. @throws ipc::Error.
Segment ShmTransport::Peer::open_segment() const {
  if (shm.held_ <= 0) return Segment::open(segment_name);
  try {
    return Segment::open_held(pid, segment_fd, segment_name);
  } catch (const Error& held) {
    try {
      return Segment::open(segment_name);
    } catch (const Error&) {
      throw held;  // what went wrong with the descriptor says more
    }
  }
}

// Before the first send: the segment mapped, the ring's pages present.
void ShmTransport::Peer::prepare() {
  faulted = true;
  if (!map()) return;
  if (auto why = segment.prefault_ring(static_cast<std::uint32_t>(shm.opt_.local_rank)); !why.empty()) {
    fault = "no room for its ring: " + why;
    fault_code = std::errc::no_space_on_device;
    return;
  }
  // This rank, as the ring's producer, pays the heavy fence before it sleeps for room.
  if (shm.heavy_) out.control()->producer_heavy.store(1, std::memory_order_release);
  out.control()->started.store(1, std::memory_order_release);  // before its first record
}

// A full fence on both sides (arm_sleep, polling(-1)): threads sleep and wake too often
// (a program's thread waiting beside an RPC server) for a heavy fence on their side.
// No ring while a thread of the peer polls: it sees the message, and a completion it
// makes wakes the peer's sleeping thread through the engine. No ring either when the
// peer's sleepers wait only for frames of other classes than `concerns` (a program
// thread in a barrier while its RPC server takes requests): then the sender looks at
// the line of the counts that change only as threads sleep and wake, not at the one
// that the peer's polling threads write at every wait.
void ShmTransport::ring_bell(Peer& p, std::uint64_t concerns) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto* h = p.segment.header();
  if (h->sleepers.load(std::memory_order_relaxed) == 0) {
    std::uint64_t w = h->wants.load(std::memory_order_relaxed);
    if (w < kWantsCount) return;  // nobody sleeps
    if (concerns != wire::kConcernsAll && (w & concerns & kWantsClasses) == 0) return;  // not for a sleeper
    // For a thread that sleeps for it: said before the look at `awake` (full fences on
    // both sides), so that a poller that counts itself out after that look sees it
    // and looks at its rings once more (polling(-1)).
    if (h->unrung.load(std::memory_order_relaxed) == 0) h->unrung.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  if (h->awake.load(std::memory_order_relaxed) > 0) return;
  // Rung already, and nobody has woken since: that ring's wake-up is still to come,
  // and the thread that ends its sleep clears `rung`, then sees this record or wakes
  // a thread that still sleeps to poll for it (disarm_sleep). (A ring is a system
  // call: a burst of small messages to a rank whose other thread sleeps rang it for
  // most of them.)
  if (h->rung.load(std::memory_order_relaxed) == 0 && h->rung.exchange(1, std::memory_order_seq_cst) == 0)
    opt_.doorbell->ring(p.bell);
}

// Writes the first record of a frame (a `whole` one when head and payload fit one
// record, else a `first` one with as much payload as it holds) and publishes it.
// Returns the payload bytes it carries, or npos when the ring has no room (`need`: the
// record's body size).
std::size_t ShmTransport::start_frame(Peer& p, std::span<const std::byte> head, const std::byte* payload,
                                      std::uint64_t length, std::size_t& need) {
  const std::size_t max = std::min(p.out.max_body(), opt_.chunk);
  const auto hs = static_cast<std::uint8_t>(head.size());
  std::size_t n;
  std::byte* at;
  if (head.size() + length <= max) {
    n = static_cast<std::size_t>(length);
    need = head.size() + n;
    if (!(at = p.out.reserve(RecordKind::whole, need, hs))) return npos;
  } else {
    n = max - kLengthField - head.size();
    need = kLengthField + head.size() + n;
    if (!(at = p.out.reserve(RecordKind::first, need, hs))) return npos;
    std::memcpy(at, &length, kLengthField);
    at += kLengthField;
  }
  base::copy_small(at, head.data(), head.size());
  if (n <= 16)
    base::copy_small(at + head.size(), payload, n);
  else
    base::copy_bytes(at + head.size(), payload, n);
  p.out.commit();
  return n;
}

// Moves queued frames of `p` into its ring while there is room. True when the queue
// emptied. Frames left waiting for room ring a peer that sleeps, whatever it sleeps
// for: it is to drain the ring.
bool ShmTransport::push(Peer& p) {
  bool any = false;
  std::uint64_t concerns = 0;
  std::size_t max_body = std::min(p.out.max_body(), opt_.chunk);
  auto stall = [&](std::size_t body) {
    p.stalled_tail.store(p.out.tail(), std::memory_order_release);
    p.stalled.store(body, std::memory_order_release);
  };
  while (!p.queue.empty()) {
    Out& o = p.queue.front();
    if (!o.started) {
      std::size_t need = 0, first = start_frame(p, {o.head, o.head_size}, o.payload, o.length, need);
      if (first == npos) {
        stall(need);
        break;
      }
      o.sent = first;
      o.started = true;
      any = true;
      concerns |= o.concerns;
    }
    while (o.sent < o.length) {
      std::size_t chunk = std::min(o.length - o.sent, max_body);
      std::byte* at = p.out.reserve(RecordKind::cont, chunk);
      if (!at) {
        stall(chunk);
        break;
      }
      base::copy_bytes(at, o.payload + o.sent, chunk);
      p.out.commit();
      o.sent += chunk;
      any = true;
    }
    if (o.sent < o.length) break;
    Completion* c = o.done;
    recycle(o);
    p.queue.pop_front();
    if (c) c->complete({});
  }
  if (!p.queue.empty()) {
    ring_bell(p, wire::kConcernsAll);
    return false;
  }
  if (any) ring_bell(p, concerns);
  p.stalled.store(0, std::memory_order_release);
  return true;
}

// The fast path of a small message: no queue, one record, straight into the ring.
void ShmTransport::Peer::send(const wire::Frame& f, Completion* done) {
  Peer& p = *this;
  ShmTransport& t = shm;
  if (!p.faulted) [[unlikely]]
    p.prepare();
  if (!p.fault.empty()) [[unlikely]] {  // reported as the peer's loss by check_peers
    if (done) done->complete(std::make_error_code(p.fault_code));
    return;
  }
  if (send_now(f)) {
    if (done) done->complete({});
    return;
  }
  bool was_empty = p.queue.empty();
  p.queue.emplace_back(f, done);
  if (was_empty && t.push(p)) return;
  if (was_empty) ++t.pending_peers_;
  Out& last = p.queue.back();
  if (last.done && !last.started && last.length <= t.opt_.eager_limit) t.detach(last);  // waits for room
}

// Payloads larger than this are copied into kept buffers of eager_limit bytes, up to
// kSpareBytes of them kept; smaller ones into the allocator's (its small bins).
constexpr std::size_t kPooledPayload = 4096;
constexpr std::size_t kSpareBytes = std::size_t{4} << 20;

bool ShmTransport::pooled(const Out& o) const { return o.length > kPooledPayload && o.length <= opt_.eager_limit; }

void ShmTransport::detach(Out& o) {
  if (pooled(o)) {
    if (spare_payloads_.empty()) {
      o.owned.reset(new std::byte[opt_.eager_limit]);
    } else {
      o.owned = std::move(spare_payloads_.back());
      spare_payloads_.pop_back();
    }
    base::copy_bytes(o.owned.get(), o.payload, o.length);
    o.payload = o.owned.get();
  }
  detach_payload(o);  // copies the payload when not done above; completes the send
}

void ShmTransport::recycle(Out& o) {
  if (o.owned && pooled(o) && (spare_payloads_.size() + 1) * opt_.eager_limit <= kSpareBytes)
    spare_payloads_.push_back(std::move(o.owned));
}

// A whole frame straight into the ring, or nothing (the ring's pages not made yet,
// frames queued before it, no room for all of it).
bool ShmTransport::Peer::send_now(const wire::Frame& f) {
  if (!faulted || !fault.empty() || !queue.empty()) return false;
  const std::size_t max = std::min(out.max_body(), shm.opt_.chunk);
  if (f.head.size() + f.length > max) [[unlikely]]
    return send_records_now(f, max);
  std::size_t need = 0;
  if (shm.start_frame(*this, f.head, static_cast<const std::byte*>(f.payload), f.length, need) == npos) return false;
  shm.ring_bell(*this, f.concerns);
  return true;
}

// A frame of several records (up to the transport's eager_room), written when the ring
// has room for all of them now: the receiver copies out the first while this side
// writes the next. Never partly: a frame that would wait for room is the caller's to
// send another way (a rendezvous, without the copy aside that a queued send takes).
bool ShmTransport::Peer::send_records_now(const wire::Frame& f, std::size_t max) {
  if (f.length > std::max(shm.opt_.eager_room, shm.opt_.eager_limit) &&
      (f.length > shm.opt_.eager_drained || !out.drained()))
    return false;
  // A peer that sends to this rank meanwhile keeps both CPUs copying: one copy, on the
  // receiver's CPU (a rendezvous), then costs less in all than two through the ring.
  if (f.length > shm.opt_.eager_limit && in->started.load(std::memory_order_acquire) &&
      RingConsumer::pending(in, in_data, shm.opt_.ring_bytes))
    return false;
  const std::size_t first = max - kLengthField - f.head.size();
  const std::size_t rest = static_cast<std::size_t>(f.length) - first;
  if (!out.fits(record_size(max) * (1 + (rest + max - 1) / max), record_size(max))) return false;
  const auto* payload = static_cast<const std::byte*>(f.payload);
  std::size_t need = 0, sent = shm.start_frame(*this, f.head, payload, f.length, need);
  shm.ring_bell(*this, f.concerns);  // a sleeping receiver starts on the first
  while (sent < f.length) {
    std::size_t n = std::min<std::size_t>(f.length - sent, max);
    std::byte* at = out.reserve(RecordKind::cont, n);
    if (!at) [[unlikely]] {
      // Room was there (fits()), but a record went back to the ring's start early, which
      // leaves only the lap's first part until the receiver follows (ring.hpp; with
      // chunks of up to IPC_SHM_WRAP_RECORDS): the rest waits in the queue, copied.
      Out& o = queue.emplace_back(f, nullptr);
      o.sent = sent;
      o.started = true;
      detach_payload(o);
      ++shm.pending_peers_;
      shm.push(*this);  // room may have come meanwhile; rings the receiver
      return true;
    }
    base::copy_bytes(at, payload + sent, n);
    out.commit();
    sent += n;
  }
  shm.ring_bell(*this, f.concerns);
  return true;
}

void ShmTransport::release(Inbound& in) {
  if (in.ring.release()) {
    auto& p = peers_[static_cast<std::size_t>(in.rank)];
    if (p) opt_.doorbell->ring(p->bell);
  }
}

void ShmTransport::broken(Inbound& in, Sink& sink, const std::string& why) {
  in.broken = true;
  if (in.in_frame) {
    in.in_frame = false;
    sink.on_frame_aborted(in.rank, in.place.token);
  }
  sink.on_peer_lost(in.rank, why);
}

// On the way of every message: inlined into drain(), the refusal out of line.
[[gnu::always_inline]] inline bool ShmTransport::begin_frame(Inbound& in, Sink& sink, const std::byte* head,
                                                             std::size_t head_size, std::uint64_t length) {
  in.place = sink.on_frame(in.rank, {head, head_size}, length);
  const char* why = in.place.error();
  if (!why) [[likely]]
    return true;
  refused(in, sink, why);
  return false;
}

void ShmTransport::refused(Inbound& in, Sink& sink, const char* why) {
  broken(in, sink, std::string("malformed frame in shared memory: ") + why);
}

bool ShmTransport::drain(Inbound& in, Sink& sink) {
  bool any = false, unreleased = false;
  std::size_t bytes = 0;
  while (!in.broken && bytes < kPollBudget) {
    const RecordHead* r = in.ring.front();
    if (!r) break;
    any = true;
    const std::byte* body = RingConsumer::body(r);
    std::size_t n = r->bytes, h = r->head;
    if (r->kind == RecordKind::whole) {
      if (in.in_frame || h == 0 || h > wire::kMaxHead || h > n) {
        broken(in, sink, "malformed record in shared memory");
        break;
      }
      std::uint64_t length = n - h;
      if (record_size(n) <= kLine) {
        // One line (the small messages): the engine matches, copies and completes it
        // in one call; the space goes back once per drain (a release is a barrier).
        if (const char* why = sink.on_whole(in.rank, {body, h}, body + h, length)) [[unlikely]] {
          refused(in, sink, why);
          break;
        }
        in.ring.pop(r);
        unreleased = true;
        bytes += n;
        continue;
      }
      // A record of several lines: their transfers from the sender's cache start now,
      // while the engine matches the frame, not one by one in the copy.
      for (std::size_t off = kLine; off < record_size(n); off += kLine)
        __builtin_prefetch(reinterpret_cast<const std::byte*>(r) + off);
      if (!begin_frame(in, sink, body, h, length)) break;
      if (length && in.place.data) base::copy_small(in.place.data, body + h, length);
      in.ring.pop(r);
      release(in);  // before the engine reacts (it may send back)
      unreleased = false;
      sink.on_frame_done(in.rank, in.place.token);
      bytes += n;
      continue;
    }
    if (r->kind == RecordKind::first) {
      std::uint64_t length = 0;
      if (in.in_frame || h == 0 || h > wire::kMaxHead || n < kLengthField + h ||
          (std::memcpy(&length, body, kLengthField), length > opt_.limits.max_payload) ||
          n - kLengthField - h > length) {
        broken(in, sink, "malformed record in shared memory");
        break;
      }
      if (!begin_frame(in, sink, body + kLengthField, h, length)) break;
      in.length = length;
      in.got = 0;
      in.in_frame = true;
      body += kLengthField + h;
      n -= kLengthField + h;
    } else if (!in.in_frame || r->kind != RecordKind::cont || n > in.length - in.got) {
      broken(in, sink, "malformed record in shared memory");
      break;
    }
    if (n && in.place.data) base::copy_bytes(static_cast<std::byte*>(in.place.data) + in.got, body, n);
    in.got += n;
    bytes += n;
    in.ring.pop(r);
    unreleased = true;
    if (in.got == in.length) {
      in.in_frame = false;
      release(in);  // free the space before the engine reacts (it may send back)
      unreleased = false;
      sink.on_frame_done(in.rank, in.place.token);
    }
  }
  if (unreleased) release(in);
  if (any) {
    if (auto& p = peers_[static_cast<std::size_t>(in.rank)]) p->out.answered();
  }
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
    if (in.rank >= 0 && in.started()) any |= drain(in, sink);
  return any;
}

bool ShmTransport::idle() const { return pending_peers_ == 0; }

namespace {
// `n` bytes from `local` here to `remote` in process `pid`, in whatever pieces the
// kernel moves at a time; false when it refuses (EPERM under ptrace rules, ENOSYS, ...).
// (Reads go by Peer::read_many, one piece or many.)
bool write_to_process_direct(pid_t pid, const std::byte* local, std::uint64_t remote, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    iovec here{const_cast<std::byte*>(local) + done, n - done};
    iovec far{reinterpret_cast<void*>(remote + done), n - done};
    ssize_t k = ::process_vm_writev(pid, &here, 1, &far, 1, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    done += static_cast<std::size_t>(k);
  }
  return true;
}

// The kernel's copy between two processes suffers on some CPUs what the C library's
// memcpy does there (base/copy.hpp): when the destination lies 1-15 bytes past the
// source modulo 4 KiB, process_vm_readv of 64 KiB-4 MiB ran at 1.6-2.7 GB/s on one
// AMD EPYC against 10-12 at other offsets. Such a copy goes through a buffer of this
// thread's placed at the source's offset (the kernel's copy then at full speed) and
// from there by copy_bytes: two copies, 7-9 GB/s in all. From 16 KiB (below it, one
// system call more costs more). Other CPUs copy at every offset alike (an AMD EPYC of
// family 26: 22 GB/s at 0, 8, 16, 32 and 64 bytes past), where the bounce only adds a
// copy (1 MiB messages to receive buffers 8 bytes past: 0.6 of Open MPI's bandwidth
// with it): by default the bounce is taken only where a measurement says it pays.
constexpr std::size_t kBounceFrom = 16 * 1024;
constexpr std::size_t kBounceBytes = 256 * 1024;  // a piece at a time: it stays in the cache

// Whether this CPU's kernel copy is slow at such offsets: measured once per process, at
// the first copy that would bounce, by reading 64 KiB of this process's own memory to a
// destination 8 bytes past the source and to one at the same offset (best of 3 each,
// taking turns: some 20-60 us in all). Slow: under half the speed. A kernel that
// refuses the read (then the peers' reads fail too) keeps the bounce.
bool kernel_copy_suffers() {
  static const bool suffers = [] {
    constexpr std::size_t n = 64 * 1024;
    std::vector<std::byte> space(3 * n + 3 * 4096);
    auto page = [&](std::size_t k) {
      auto at = reinterpret_cast<std::uintptr_t>(space.data()) + k * (n + 4096);
      return reinterpret_cast<std::byte*>((at + 4095) & ~std::uintptr_t{4095});
    };
    std::byte *src = page(0), *same = page(1), *past = page(2) + 8;
    std::memset(space.data(), 1, space.size());  // every page present before the timing
    auto read = [&](std::byte* dst) {
      iovec here{dst, n}, there{src, n};
      auto t0 = std::chrono::steady_clock::now();
      if (::process_vm_readv(::getpid(), &here, 1, &there, 1, 0) != static_cast<ssize_t>(n)) return -1.0;
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    double fast = 1e9, slow = 1e9;
    for (int i = 0; i < 3; ++i) {
      double a = read(same), b = read(past);
      if (a < 0 || b < 0) return true;
      fast = std::min(fast, a);
      slow = std::min(slow, b);
    }
    return slow > 2 * fast;
  }();
  return suffers;
}

// This thread's bounce buffer, `offset` bytes (mod 4 KiB) past a page.
std::byte* bounce(std::uintptr_t offset) {
  thread_local std::unique_ptr<std::byte[]> buffer;
  if (!buffer) buffer = std::make_unique<std::byte[]>(kBounceBytes + 2 * 4096);
  auto base = (reinterpret_cast<std::uintptr_t>(buffer.get()) + 4095) & ~std::uintptr_t{4095};
  return reinterpret_cast<std::byte*>(base + (offset & 4095));
}

// `bounced`: through this thread's buffer (ShmTransport::kernel_aliased).
bool write_to_process(pid_t pid, const std::byte* local, std::uint64_t remote, std::size_t n, bool bounced) {
  if (!bounced) return write_to_process_direct(pid, local, remote, n);
  for (std::size_t done = 0; done < n;) {
    std::size_t m = std::min(kBounceBytes, n - done);
    std::byte* b = bounce(remote + done);
    base::copy_bytes(b, local + done, m);
    if (!write_to_process_direct(pid, b, remote + done, m)) return false;
    done += m;
  }
  return true;
}
}  // namespace

bool ShmTransport::kernel_aliased(std::uintptr_t dst, std::uintptr_t src, std::size_t n) const {
  if (n < kBounceFrom || !base::aliased(dst, src, 15) || opt_.bounce == Options::Bounce::never) return false;
  return opt_.bounce == Options::Bounce::always || kernel_copy_suffers();
}
bool ShmTransport::kernel_aliased(const Endpoint::ReadPiece& p) const {
  return kernel_aliased(reinterpret_cast<std::uintptr_t>(p.dst), p.remote, p.n);
}

bool ShmTransport::Peer::read(std::uint64_t remote, void* dst, std::size_t n) {
  const ReadPiece piece{remote, dst, n};
  if (read_many(&piece, 1) == 1) return true;
  disable_read();  // use the chunked path from now on
  return false;
}

// Up to kReadPieces pieces per process_vm_readv (the kernel takes up to IOV_MAX): on
// this machine a call cost about as much as copying 16 KiB (64 reads of 16 KiB: 171 us
// one call each, 94 us in one call; of 8 KiB 131 against 53).
std::size_t ShmTransport::Peer::read_many(const ReadPiece* pieces, std::size_t count) {
  std::size_t first = 0;  // the first aliased piece: those before it go in one batch
  while (first < count && !shm.kernel_aliased(pieces[first])) ++first;
  std::size_t done = read_pieces(pieces, first);
  if (done < first) return done;
  for (; done < count; ++done)  // pieces one by one from there
    if (!read_piece(pieces[done])) break;
  return done;
}

bool ShmTransport::Peer::read_piece(const ReadPiece& piece) {
  if (!shm.kernel_aliased(piece)) return read_pieces(&piece, 1) == 1;
  auto* dst = static_cast<std::byte*>(piece.dst);
  for (std::size_t done = 0; done < piece.n;) {
    std::size_t m = std::min(kBounceBytes, piece.n - done);
    std::byte* b = bounce(piece.remote + done);
    const ReadPiece part{piece.remote + done, b, m};
    if (read_pieces(&part, 1) != 1) return false;
    base::copy_bytes(dst + done, b, m);
    done += m;
  }
  return true;
}

std::size_t ShmTransport::Peer::read_pieces(const ReadPiece* pieces, std::size_t count) {
  constexpr std::size_t kReadPieces = 64;
  iovec here[kReadPieces], far[kReadPieces];
  std::size_t done = 0;  // pieces that are there
  std::size_t into = 0;  // bytes of pieces[done] that are there (a partial transfer)
  for (;;) {
    while (done < count && pieces[done].n == into) {  // (empty pieces too)
      ++done;
      into = 0;
    }
    if (done == count) return done;
    std::size_t m = 0;
    for (std::size_t i = done; i < count && m < kReadPieces; ++i, ++m) {
      const std::size_t skip = i == done ? into : 0;
      here[m] = {static_cast<std::byte*>(pieces[i].dst) + skip, pieces[i].n - skip};
      far[m] = {reinterpret_cast<void*>(pieces[i].remote + skip), pieces[i].n - skip};
    }
    ++shm.read_calls_;
    ssize_t k = ::process_vm_readv(pid, here, m, far, m, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return done;
    auto left = static_cast<std::size_t>(k);
    while (done < count && left >= pieces[done].n - into) {
      left -= pieces[done].n - into;
      into = 0;
      ++done;
    }
    into += left;
  }
}

bool ShmTransport::Peer::write(std::uint64_t remote, const void* src, std::size_t n) {
  auto* from = static_cast<const std::byte*>(src);
  if (write_to_process(pid, from, remote, n, shm.kernel_aliased(remote, reinterpret_cast<std::uintptr_t>(from), n)))
    return true;
  caps_ &= ~kSharedCopy;
  return false;
}

// The offers of copies: in the control of the ring the peer writes to this rank (this
// rank's segment), claimed by the peer through the same control (its producer's).
// A slot holds the rendezvous number and the state (copy_slot); the numbers are the sender's, unique among its rendezvous, so that an offer withdrawn
// and a slot offered again for another one never pass for each other.
int ShmTransport::Peer::offer(std::uint64_t cookie, std::size_t size) {
  if (shm.opt_.shared_copy == 0 || size < shm.opt_.shared_copy) return -1;
  for (int s = 0; s < kCopySlots; ++s) {
    std::uint64_t expect = 0;
    if (in->copies[s].load(std::memory_order_relaxed) == 0 &&
        in->copies[s].compare_exchange_strong(expect, copy_slot(cookie, kCopyOffered), std::memory_order_seq_cst))
      return s;
  }
  return -1;
}

bool ShmTransport::Peer::take_back(int slot, std::uint64_t cookie) {
  std::uint64_t expect = copy_slot(cookie, kCopyOffered);
  return in->copies[slot].compare_exchange_strong(expect, 0, std::memory_order_seq_cst);
}

void ShmTransport::Peer::free_offer(int slot) { in->copies[slot].store(0, std::memory_order_release); }

bool ShmTransport::Peer::claim(int slot, std::uint64_t cookie) {
  if (slot < 0 || slot >= kCopySlots || !(caps_ & kSharedCopy) || !map()) return false;
  std::uint64_t expect = copy_slot(cookie, kCopyOffered);
  return out.control()->copies[slot].compare_exchange_strong(expect, copy_slot(cookie, kCopyClaimed),
                                                             std::memory_order_seq_cst);
}

bool ShmTransport::arm_sleep(std::uint64_t wants) {
  auto* h = own_.header();
  if (wants == wire::kConcernsAll) {
    h->sleepers.fetch_add(1, std::memory_order_seq_cst);
  } else {
    std::uint64_t w = h->wants.load(std::memory_order_relaxed);
    while (!h->wants.compare_exchange_weak(w, (w + kWantsCount) | (wants & kWantsClasses), std::memory_order_seq_cst))
      ;
  }
  if (inbound_pending()) return false;
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

bool ShmTransport::inbound_pending() const {
  for (auto& in : inbound_)
    if (in.rank >= 0 && !in.broken && in.control->started.load(std::memory_order_seq_cst) &&
        RingConsumer::pending(in.control, in.data, opt_.ring_bytes))
      return true;
  return false;
}

// Counted out, the looks at `sleepers` and at the rings are ordered after the count
// (the RMW is a full fence): with nobody asleep, no sender skipped a ring for this
// count; and a sender that saw the count, and skipped its ring, had published its
// record before it looked (the fence in ring_bell), so the record is in view here.
// Only then is the thread to poll once more: a poll costs several times these looks,
// and an RPC server whose program thread sleeps in a barrier counts itself out after
// every request it takes.
bool ShmTransport::polling(int delta) {
  auto* h = own_.header();
  h->awake.fetch_add(delta, std::memory_order_seq_cst);
  if (delta >= 0) return false;
  // A thread that sleeps for any frame, or a frame left unrung for one that sleeps for
  // its class (ring_bell): only then the look.
  bool look = h->sleepers.load(std::memory_order_seq_cst) > 0;
  if (h->unrung.load(std::memory_order_seq_cst) != 0 && h->unrung.exchange(0, std::memory_order_seq_cst) != 0)
    look = true;
  return look && inbound_pending();
}

void ShmTransport::disarm_sleep(std::uint64_t wants) {
  auto* h = own_.header();
  if (wants == wire::kConcernsAll) {
    h->sleepers.fetch_sub(1, std::memory_order_seq_cst);
  } else {
    std::uint64_t w = h->wants.load(std::memory_order_relaxed);
    std::uint64_t n;
    do n = w - kWantsCount < kWantsCount ? 0 : w - kWantsCount;  // the last one clears the classes
    while (!h->wants.compare_exchange_weak(w, n, std::memory_order_seq_cst));
  }
  // A sender that saw the flag set did not ring (ring_bell); after the clear (a full
  // fence) its record is in view. This thread may leave without polling (its wait is
  // over), so when a record waits while another thread of this rank still sleeps,
  // that thread is woken to poll: the record may be its own.
  if (h->rung.load(std::memory_order_relaxed) != 0 && h->rung.exchange(0, std::memory_order_seq_cst) != 0 &&
      (h->sleepers.load(std::memory_order_seq_cst) > 0 || h->wants.load(std::memory_order_seq_cst) >= kWantsCount)) {
    if (inbound_pending()) opt_.doorbell->ring();
  }
}

void ShmTransport::check_peers(Sink& sink) {
  for (auto& p : peers_) {
    if (!p || p->lost || p->pid <= 0) continue;
    bool gone = ::kill(p->pid, 0) != 0 && errno == ESRCH;
    if (!gone && p->fault.empty()) continue;
    p->lost = true;
    for (auto& in : inbound_)
      if (in.rank == p->rank && in.in_frame) {
        in.in_frame = false;
        sink.on_frame_aborted(in.rank, in.place.token);
      }
    auto q = std::move(p->queue);
    p->queue.clear();
    if (!q.empty()) --pending_peers_;  // else flush() would wait for it forever
    for (auto& o : q)
      if (o.done) o.done->complete(std::make_error_code(std::errc::connection_aborted));
    sink.on_peer_lost(p->rank, gone ? "its process (pid " + std::to_string(p->pid) + ") is gone" : p->fault);
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

// Yama's ptrace_scope 1 and up refuses process_vm_readv between ranks (siblings, not
// a parent and its child), a seccomp filter (containers) may refuse the call itself:
// the first is read from /proc, the second tried on this process's own memory.
bool ShmTransport::single_copy_allowed() {
  if (std::FILE* f = std::fopen("/proc/sys/kernel/yama/ptrace_scope", "re")) {
    int scope = 0;
    bool read = std::fscanf(f, "%d", &scope) == 1;
    std::fclose(f);
    if (read && scope != 0) return false;
  }
  std::uint64_t from = 0x1badc0de, to = 0;
  iovec local{&to, sizeof to}, far{&from, sizeof from};
  return ::process_vm_readv(::getpid(), &local, 1, &far, 1, 0) == static_cast<ssize_t>(sizeof to) && to == from;
}

namespace {
// A size in bytes from parameter `name` (declared a count: never negative).
std::size_t bytes_param(const char* name) { return static_cast<std::size_t>(base::param_int(name)); }
}  // namespace

// IPC_SHM_RING, or by default 512 KiB rings while a node's L² rings fit in 64 MiB,
// smaller ones (down to 64 KiB) beyond.
std::size_t ShmTransport::ring_bytes_for(int local_size) {
  if (base::param("IPC_SHM_RING") != "auto") return bytes_param("IPC_SHM_RING");
  std::size_t l = static_cast<std::size_t>(local_size);
  std::size_t ring = (std::size_t{64} << 20) / (l * l);
  ring = std::clamp<std::size_t>(ring, 64 << 10, 512 << 10);
  return ring & ~std::size_t{4095};
}

namespace {

std::unique_ptr<Transport> open_shm(const Config& cfg) {
  if (cfg.local_size < 2) return nullptr;  // nobody to reach on this node
  Options o;
  static_cast<Config&>(o) = cfg;
  o.ring_bytes = ShmTransport::ring_bytes_for(cfg.local_size);
  o.cma = base::param("IPC_SHM_CMA") == "auto" ? ShmTransport::single_copy_allowed() : base::param_bool("IPC_SHM_CMA");
  // With the single copy, messages from 8 KiB on go by it: a pair sending both ways
  // at once then copies each message once, on the receiver's CPU, instead of twice
  // (into the ring and out), and a ping-pong of 16-64 KiB takes 0.7 of the time.
  o.eager_limit = base::param("IPC_SHM_EAGER") == "auto"
                      ? (o.cma ? std::size_t{8192} : std::size_t{16384})
                      : bytes_param("IPC_SHM_EAGER");
  o.chunk = bytes_param("IPC_SHM_CHUNK");
  o.eager_room = bytes_param("IPC_SHM_EAGER_ROOM");
  o.eager_drained = bytes_param("IPC_SHM_EAGER_DRAINED");
  o.wrap_at = bytes_param("IPC_SHM_WRAP");  // 0: never
  o.wrap_records = bytes_param("IPC_SHM_WRAP_RECORDS");
  o.wrap_answered_at = bytes_param("IPC_SHM_WRAP_ANSWERED");
  o.prefetch_lines = base::write_prefetch_available() ? bytes_param("IPC_SHM_PREFETCH") : 0;
  // Not when ranks outnumber CPUs: no CPU is idle to take a part, and a sender that
  // claims one and loses its CPU keeps the receiver waiting for a time slice (8 ranks
  // on 2 CPUs, 1 MiB allreduce and bcast: 1.16 times the time, some rounds 4).
  o.shared_copy = cfg.oversubscribed ? 0 : bytes_param("IPC_SHM_SHARED_COPY");  // 0: never
  if (std::string b = base::param("IPC_SHM_BOUNCE"); b != "auto")
    o.bounce = base::param_bool("IPC_SHM_BOUNCE") ? Options::Bounce::always : Options::Bounce::never;
  return std::make_unique<ShmTransport>(o);
}

}  // namespace

extern const Descriptor descriptor;
const Descriptor descriptor{"shm", &open_shm};

}  // namespace ipc::transport::shm
