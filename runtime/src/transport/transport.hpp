// The transport seam: the only transport header the engine includes.
//
// A transport moves opaque frames (wire::FrameHeader + `length` payload bytes) to the
// peers it reaches, in order per peer, and reports what arrives when polled. It knows
// nothing of tags, matching, collectives or RPC; the engine decides eager versus
// rendezvous and gives frames their meaning.
//
// Threading: every member except name() is called with the engine's progress lock
// held, so a transport needs no locks of its own. Completions and Sink callbacks are
// made from inside send()/poll()/close(), on that same thread, under that lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "wire/frame.hpp"

namespace ipc::transport {

/// What a rank publishes through the bootstrap: where it runs, and one card per
/// transport it runs (what a peer needs to reach it: an address, a segment name).
struct PeerCard {
  int rank = -1;
  std::string node;     // the node id ipcrun placed the rank on
  std::string boot_id;  // the kernel's boot id (ranks of one node must share it)
  int pid = 0;
  int cpus = 0;              // CPUs the rank may run on
  std::string coll_flat;     // its IPC_COLL_FLAT (the job uses rank 0's)
  std::string node_group;    // rank 0: the node group's segment, when it made one
  std::map<std::string, std::string, std::less<>> cards;  // transport name -> card

  std::string encode() const;
  /// @throws ipc::ProtocolError naming the rank when malformed.
  static PeerCard decode(int rank, std::string_view text);
};

/// Told when a send's payload is no longer needed by the transport (sent, or copied).
class Completion {
 public:
  virtual void complete(const std::error_code& ec) = 0;

 protected:
  ~Completion() = default;
};

/// The engine's side of the receive path.
class Sink {
 public:
  struct Placement {
    void* data = nullptr;   // where the frame's payload goes (h.length bytes); null: skip it
    void* token = nullptr;  // handed back in on_frame_done / on_frame_aborted
  };
  /// A frame header arrived from `peer` (authenticated by the transport). Returns
  /// where its payload goes; a null `data` means the bytes are to be read and dropped.
  virtual Placement on_frame(int peer, const wire::FrameHeader& h) = 0;
  /// The payload of that frame is in place.
  virtual void on_frame_done(int peer, const wire::FrameHeader& h, void* token) = 0;
  /// The rest of that frame will never come (its peer is lost, or sent garbage);
  /// called before on_peer_lost, after which the transport never touches the
  /// placement again.
  virtual void on_frame_aborted(int peer, const wire::FrameHeader& h, void* token) = 0;
  /// `peer` can no longer be reached; `why` says how it was lost.
  virtual void on_peer_lost(int peer, const std::string& why) = 0;

 protected:
  ~Sink() = default;
};

class Transport {
 public:
  virtual ~Transport() = default;

  /// Its name in --transports and in reports: "self", "shm", "tcp", "mpi".
  virtual std::string_view name() const = 0;
  /// What peers need to reach this rank through it; published at start-up.
  virtual std::string card() const = 0;
  /// Whether it can reach `peer` from `me` (both cards known).
  virtual bool reaches(const PeerCard& me, const PeerCard& peer) const = 0;
  /// `peer` will be reached through this transport. Cheap: connects lazily.
  virtual void add_peer(const PeerCard& peer) = 0;
  /// Messages up to this size go eagerly; larger ones by rendezvous.
  virtual std::size_t eager_limit() const = 0;

  /// Queues the frame `h` with its h.length payload bytes at `payload`. Never blocks.
  /// The payload must stay valid until `done->complete()` is called (possibly before
  /// send returns); `done` may be null when nobody needs to know. Frames to one peer
  /// arrive in the order they were sent.
  virtual void send(int peer, const wire::FrameHeader& h, const void* payload, Completion* done) = 0;
  /// Makes progress without blocking: reads arrivals (calling the sink), writes queued
  /// frames. Returns true when it did anything.
  virtual bool poll(Sink& sink) = 0;
  /// A descriptor that becomes readable when poll() would find work, for sleeping in
  /// epoll; -1 when the transport has none (then the engine does not sleep on it).
  virtual int wait_fd() const { return -1; }
  /// True when nothing is queued to send.
  virtual bool idle() const = 0;
  /// Every peer has called add_peer for its peers (a fence has passed since): a
  /// transport may now drop what only start-up needed (shm unlinks its segment).
  virtual void ready() {}

  /// Single-copy rendezvous: whether read() may be tried on `peer`'s memory.
  virtual bool can_read(int peer) const {
    (void)peer;
    return false;
  }
  /// Copies `n` bytes at address `remote` of `peer`'s process to `dst`. False when
  /// the kernel refuses (the engine falls back to cts/data; the transport may stop
  /// offering can_read for that peer).
  virtual bool read(int peer, std::uint64_t remote, void* dst, std::size_t n) {
    (void)peer, (void)remote, (void)dst, (void)n;
    return false;
  }

  /// About to sleep in epoll on wait_fd(): ask peers to ring this rank's doorbell.
  /// False when input is already waiting (do not sleep). Called with the progress lock
  /// held (several threads may sleep at once). Every arm_sleep() that returned is
  /// paired with disarm_sleep(), called without the lock (atomics only; what needs the
  /// lock waits for the next poll).
  virtual bool arm_sleep() { return true; }
  virtual void disarm_sleep() {}
  /// Looks for peers that died without a word (shared memory has no connection to
  /// break); reports them with sink.on_peer_lost. Called while a waiter sleeps, about
  /// every 100 ms, with the progress lock held.
  virtual void check_peers(Sink& sink) { (void)sink; }
  /// The job is over: drop every connection quietly (no peer-lost reports after this).
  virtual void close() = 0;
};

}  // namespace ipc::transport
