// The transport seam: the only transport header the engine includes.
//
// A transport moves opaque frames (wire/frame.hpp: a head of up to wire::kMaxHead
// bytes and a payload) to the peers it reaches, in order per peer, and reports what
// arrives when polled. It never reads a head: the engine encodes and decodes them
// (core/protocol.hpp), including the compact form that keeps a small message within
// one 64-byte line. It knows nothing of tags, matching, collectives or RPC.
//
// Objects: a Transport is one medium of this rank (its listening socket, its
// segment); connect() gives the Endpoint through which the engine reaches one peer.
// Endpoints belong to their transport and live until it is destroyed.
//
// Threading: every member except name(), caps() and eager_limit() is called with the
// engine's progress lock held, so a transport needs no locks of its own; the few that
// say otherwise (disarm_sleep) use atomics only. Completions and Sink callbacks are
// made from inside send()/poll()/check_peers()/close(), on that thread, under that lock.
//
// Errors: set-up (constructor, connect) throws ipc::Error naming what failed; after
// that nothing throws. A send to a peer that is gone completes with an error code; a
// peer that breaks (connection lost, garbage, process gone) is reported once through
// Sink::on_peer_lost, after the frame it was delivering, if any, was aborted.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "base/copy.hpp"
#include "base/doorbell.hpp"
#include "base/job.hpp"
#include "wire/frame.hpp"
#include "wire/secret.hpp"

namespace ipc::transport {

/// What a rank publishes through the bootstrap: where it runs, and one card per
/// transport it runs (what a peer needs to reach it: an address, a segment name),
/// which that transport writes and reads.
struct PeerCard {
  int rank = -1;
  std::string node;     // the node id ipcrun placed the rank on
  std::string boot_id;  // the kernel's boot id (ranks of one node must share it)
  int pid = 0;
  std::map<std::string, std::string, std::less<>> cards;  // transport name -> card

  std::string encode() const;
  /// @throws ipc::ProtocolError naming the rank when malformed.
  static PeerCard decode(int rank, std::string_view text);
};

/// Told when a send's payload is no longer needed by the transport (sent, or copied).
class Completion {
 public:
  /// `ec` is empty on success, else why the frame will never arrive (the peer is
  /// gone). Called once, possibly before send() returns; may call back into the
  /// engine (mark requests done), never into the transport.
  virtual void complete(const std::error_code& ec) = 0;

 protected:
  ~Completion() = default;
};

/// The engine's side of the receive path. Callbacks run inside poll() (and
/// check_peers(), close()) under the progress lock. They may send on any endpoint
/// (of any transport) and read() from one; they never poll, connect or close.
class Sink {
 public:
  /// Two words, so that it comes back in registers on the way of every message.
  struct Placement {
    void* data = nullptr;   // where the payload goes (length bytes); null: read and drop it
    void* token = nullptr;  // handed back in on_frame_done / on_frame_aborted

    /// The head broke the protocol: the transport drops the peer with `why` (through
    /// on_peer_lost) and delivers nothing more from it.
    static Placement refuse(const char* why) { return {const_cast<char*>(why), refused_token()}; }
    /// Null when the frame is accepted, else why it was refused.
    const char* error() const { return token == refused_token() ? static_cast<const char*>(data) : nullptr; }

   private:
    static void* refused_token() {
      static char refused;
      return &refused;
    }
  };
  /// A frame's head arrived from `peer` (authenticated by the transport); `head` is
  /// valid during the call only. Returns where the `length` bytes of payload go.
  virtual Placement on_frame(int peer, std::span<const std::byte> head, std::uint64_t length) = 0;
  /// The payload of that frame is in place (called even when it had no payload).
  virtual void on_frame_done(int peer, void* token) = 0;
  /// A whole frame whose head and payload are both in view during the call (a small
  /// frame in one shared-memory record): what on_frame, a copy of the payload to its
  /// placement and on_frame_done do, in one call. Returns null, or why the frame was
  /// refused (as Placement::error; the transport then drops the peer).
  virtual const char* on_whole(int peer, std::span<const std::byte> head, const std::byte* payload,
                               std::uint64_t length) {
    Placement p = on_frame(peer, head, length);
    if (const char* why = p.error()) return why;
    if (length && p.data) base::copy_bytes(p.data, payload, length);
    on_frame_done(peer, p.token);
    return nullptr;
  }
  /// The rest of that frame will never come (its peer is lost, or sent garbage);
  /// called before on_peer_lost, after which the transport never touches the
  /// placement again.
  virtual void on_frame_aborted(int peer, void* token) = 0;
  /// `peer` can no longer be reached; `why` says how it was lost. Once per peer.
  virtual void on_peer_lost(int peer, const std::string& why) = 0;

 protected:
  ~Sink() = default;
};

/// What an endpoint can do besides sending frames.
enum Capability : unsigned {
  /// read() copies from the peer's memory (single-copy rendezvous).
  kOneSidedRead = 1u << 0,
  /// The two sides copy a large rendezvous payload together, each a part, on their two
  /// CPUs: the receiver offers the second part (offer()) and reads the first; the
  /// sender claims the offer (claim()) and writes its part (write()); a receiver that
  /// finds its offer unclaimed once its part is in takes it back (take_back()) and
  /// reads the rest itself, so that a sender busy elsewhere delays nothing.
  kSharedCopy = 1u << 1,
};

/// What every transport is started with: where this rank is, the job's secret, the
/// limits of frames read off the wire, and this rank's doorbell (shared-memory peers
/// ring it, and ring theirs with it).
struct Config : base::JobPlace {
  wire::Secret secret{};
  wire::FrameLimits limits{};
  const base::Doorbell* doorbell = nullptr;
  // Ranks outnumber CPUs on this node: waiters sleep often, so the shared-memory
  // handshakes keep a full fence on both sides (base/fences.hpp: the heavy side would
  // then interrupt the other CPUs often).
  bool oversubscribed = false;
};

class Transport;

/// This rank's way to one peer through one transport.
class Endpoint {
 public:
  Endpoint(Transport& transport, int peer) : transport_(transport), peer_(peer) {}
  virtual ~Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  Transport& transport() const { return transport_; }
  int peer() const { return peer_; }
  /// Its capabilities now: a flag may drop once (kOneSidedRead after a refusal),
  /// never come back.
  unsigned caps() const { return caps_; }

  /// Queues frame `f`. Never blocks, never throws. The head is copied before send
  /// returns; the payload must stay valid until `done->complete()` (which may be
  /// called before send returns); `done` may be null when nobody needs to know.
  /// Frames to one peer arrive in the order they were sent. A payload of at most
  /// eager_limit() bytes that cannot leave at once is copied (its completion then
  /// comes at once), except where a transport says otherwise.
  virtual void send(const wire::Frame& f, Completion* done) = 0;
  /// Sends frame `f` now when the transport can be done with its payload before
  /// returning (written out, in order behind what is queued), and returns true; else
  /// does nothing and returns false (send() then). What lets the engine complete a
  /// small non-blocking send at once, without a request.
  virtual bool send_now(const wire::Frame& f) {
    (void)f;
    return false;
  }
  /// With kOneSidedRead: copies `n` bytes at address `remote` of the peer's process to
  /// `dst`, and returns when they are there (it waits for the copy, never for the
  /// peer). False when the kernel refuses (the engine then falls back to sending the
  /// payload; the endpoint drops kOneSidedRead). Never throws.
  virtual bool read(std::uint64_t remote, void* dst, std::size_t n) {
    (void)remote, (void)dst, (void)n;
    return false;
  }
  /// One piece of a read_many(): `n` bytes at address `remote` of the peer's process
  /// to `dst`.
  struct ReadPiece {
    std::uint64_t remote;
    void* dst;
    std::size_t n;
  };
  /// With kOneSidedRead: read() of several pieces, in as few system calls as the
  /// transport can (one call per piece cost as much as the copy of 16 KiB). Returns
  /// how many of the leading pieces are there; it stops at the first it cannot read
  /// and, unlike read(), keeps kOneSidedRead: the caller read()s the rest one by one
  /// (which drops it on a refusal); by default, all of them. Never throws.
  virtual std::size_t read_many(const ReadPiece* pieces, std::size_t count) {
    (void)pieces, (void)count;
    return 0;
  }
  /// With kSharedCopy: copies `n` bytes from `src` to address `remote` of the peer's
  /// process, as read() the other way (false: refused; the endpoint drops kSharedCopy).
  virtual bool write(std::uint64_t remote, const void* src, std::size_t n) {
    (void)remote, (void)src, (void)n;
    return false;
  }
  /// kSharedCopy, as the receiver of rendezvous `cookie` (the sender's number for it)
  /// of `size` bytes: offers its second part to the peer; the slot that names the
  /// offer, or -1 when none is free or the payload is too small to be worth it.
  virtual int offer(std::uint64_t cookie, std::size_t size) {
    (void)cookie, (void)size;
    return -1;
  }
  /// Receiver: withdraws the offer in `slot` unless the peer claimed it; true when
  /// withdrawn (the slot is free again), false when the peer copies the part (free the
  /// slot with free_offer() once it says it has).
  virtual bool take_back(int slot, std::uint64_t cookie) {
    (void)slot, (void)cookie;
    return true;
  }
  virtual void free_offer(int slot) { (void)slot; }
  /// Sender: claims the offer in `slot` for its rendezvous `cookie`; true when the
  /// part is this side's to write (false: withdrawn, or no such offer).
  virtual bool claim(int slot, std::uint64_t cookie) {
    (void)slot, (void)cookie;
    return false;
  }

 protected:
  unsigned caps_ = 0;

 private:
  Transport& transport_;
  int peer_;
};

class Transport {
 public:
  virtual ~Transport() = default;

  /// Its name in --transports and in reports: "self", "shm", "tcp", "mpi". Any thread.
  virtual std::string_view name() const = 0;
  /// What peers need to reach this rank through it (an address, a segment name), in
  /// a form only this transport reads; published at start-up. Never blocks.
  virtual std::string card() const = 0;
  /// Whether it can reach `peer` from `me` (both cards known). Never blocks.
  virtual bool reaches(const PeerCard& me, const PeerCard& peer) const = 0;
  /// The endpoint through which `peer` will be reached, owned by the transport. Never
  /// blocks: connections open lazily, on the first frame.
  /// @throws ipc::Error naming the peer when its card is unusable.
  virtual Endpoint& connect(const PeerCard& peer) = 0;
  /// Messages up to this size go eagerly; larger ones by rendezvous. Any thread.
  virtual std::size_t eager_limit() const = 0;
  /// Messages larger than eager_limit() and up to this size go eagerly too when the
  /// endpoint's send_now() takes them (the whole frame written out at once: no copy
  /// aside, no queue), else by rendezvous; 0: none. Any thread.
  virtual std::size_t eager_room_limit() const { return 0; }
  /// Larger messages up to this size may go eagerly too (when send_now() takes them,
  /// which it does for an exchange: the peer took everything before) unless a receive
  /// from that peer is posted (both ways at once); 0: none. Any thread.
  virtual std::size_t eager_drained_limit() const { return 0; }
  /// Whether the endpoints it makes start with kOneSidedRead (rendezvous payloads
  /// copied once, by the receiver). Any thread.
  virtual bool single_copy() const { return false; }

  /// Makes progress: reads arrivals (calling the sink), writes queued frames. Never
  /// blocks, never throws (a broken peer is reported to the sink). Returns true when it
  /// did anything.
  virtual bool poll(Sink& sink) = 0;
  /// A descriptor that becomes readable when poll() would find work, for sleeping in
  /// epoll; -1 when the transport has none (it wakes sleepers through the rank's
  /// doorbell instead).
  virtual int wait_fd() const { return -1; }
  /// How long a sleeping thread may go without polling it. A transport that wakes
  /// sleepers (its descriptor, the doorbell) needs a poll only for peers that died
  /// silently; one that cannot (mpi: MPI has no descriptor) names how often it must be
  /// polled, which bounds the latency of a message to a rank asleep. Any thread.
  virtual std::chrono::milliseconds sleep_poll() const { return std::chrono::milliseconds(100); }
  /// True when nothing is queued to send. Never blocks.
  virtual bool idle() const = 0;
  /// Every peer has connected to its peers (a fence has passed since): a transport
  /// may now drop what only start-up needed (shm unlinks its segment).
  virtual void ready() {}

  /// A thread is about to sleep (in epoll on wait_fd() and the doorbell): make sure
  /// an arrival wakes it. False when input is already waiting (do not sleep). Called
  /// with the progress lock held (several threads may sleep at once). Every
  /// arm_sleep() that returned is paired with disarm_sleep(), called without the lock
  /// (atomics only; what needs the lock waits for the next poll). `wants`: the frames
  /// that may end the thread's wait, as wire::Frame::concerns bits (kConcernsAll: any
  /// frame); a transport may leave it asleep for the others. The same value goes to
  /// the paired disarm_sleep().
  virtual bool arm_sleep(std::uint64_t wants) {
    (void)wants;
    return true;
  }
  virtual void disarm_sleep(std::uint64_t wants) { (void)wants; }
  /// A thread of this rank starts (+1) or stops (-1) polling in a wait: while one does,
  /// peers need not wake a sleeping thread of this rank (it polls for it, and its
  /// completions wake the sleeper). Any thread, without the lock. After a -1, true when
  /// the thread must poll once more (a peer may have left a message unannounced
  /// because of its count, for a thread of this rank that sleeps).
  virtual bool polling(int delta) {
    (void)delta;
    return false;
  }
  /// Looks for peers that died without a word (shared memory has no connection to
  /// break); reports them with sink.on_peer_lost. Called while a waiter sleeps, about
  /// every 100 ms, with the progress lock held.
  virtual void check_peers(Sink& sink) { (void)sink; }
  /// The job is over: drop every connection quietly (no peer-lost reports after this);
  /// queued sends complete with an error.
  virtual void close() = 0;
};

}  // namespace ipc::transport
