// The shared-memory transport between ranks of one node.
//
// Each rank owns a segment holding one inbound ring per rank of its node (ring i is
// written only by the rank of local index i: single producer, single consumer, no
// locks); a sender maps a peer's segment at its first send to it (segment.hpp). A
// frame is one `whole` record (its opaque head, then its payload); a frame larger
// than a record is a `first` record (payload length, head, first part) and
// `cont` records, so a large frame streams through the ring in pipelined chunks while
// the receiver copies out behind the sender. A small eager message (the engine's
// 12-byte compact head and up to 36 bytes) is one 64-byte line, one of up to 4 bytes
// half of one. When a ring is
// full, frames wait in the sender's queue (small payloads copied, so eager sends
// complete at once) and leave on later polls: nothing is dropped, and since every
// poll also drains the inbound rings, two ranks flooding each other still progress.
//
// Large messages go by rendezvous (they land in the receiver's buffer, never in an
// unexpected-message copy), then are read in one copy with process_vm_readv where the
// kernel allows it between the ranks (IPC_SHM_CMA, by default where it does; a refusal
// falls back to the chunked path for that peer), or stream through the ring in
// pipelined chunks (sender and receiver copy at once, on two cores).
// docs/transports.md has the figures behind the default.
//
// Waking a sleeping receiver: the receiver counts itself in its segment's `sleepers`
// before it sleeps and re-checks its rings; a sender that sees sleepers > 0 after
// publishing rings the receiver's doorbell (base/doorbell.hpp: the rank's one
// doorbell, which its waiter sleeps on). Both sides order their store before their
// load (seq_cst), so a wake-up is never lost. While a thread of the receiver polls (its
// segment's `awake` count) nobody rings: it will see the record, or see it when it
// stops polling (it counts itself out and, if a thread of its rank still sleeps, polls
// once more), and a completion it
// makes wakes the receiver's sleeping threads through the engine. A thread that sleeps
// in a receive counts itself in `wants` with its context's class instead: frames of
// other classes (Frame::concerns) leave it asleep and never look at `awake`, whose line
// the receiver's pollers write at every wait. A rank is rung once
// until one of its threads wakes (`rung` in its segment header: ring_bell,
// disarm_sleep). A producer waiting
// for room is woken by the consumer's release, whose fence is a light one when the
// producer pays a heavy one before it sleeps (base/fences.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "base/doorbell.hpp"
#include "transport/shm/ring.hpp"
#include "transport/shm/segment.hpp"
#include "transport/transport.hpp"

namespace ipc::transport::shm {

struct Options : Config {
  std::size_t ring_bytes = 512 * 1024;
  std::size_t eager_limit = 64 * 1024;
  std::size_t chunk = 16 * 1024;  // payload bytes per record: the pipeline's step
  // Larger messages up to this go eagerly when the ring has room for all their records
  // now (eager_room_limit()); 0: never.
  std::size_t eager_room = 0;
  // ... and up to this when the receiver has taken everything before them (an exchange,
  // not a stream); 0: never.
  std::size_t eager_drained = 0;
  std::size_t wrap_at = 8 * 1024;  // a drained ring's producer goes back to its start past this (ring.hpp)
  std::size_t wrap_records = 16 * 1024;  // ... records up to this size in an exchange (ring.hpp)
  std::size_t wrap_answered_at = 512;    // ... past this in an exchange (ring.hpp)
  std::size_t prefetch_lines = 0;        // a producer's write prefetch, lines past each record (ring.hpp; 0: none)
  std::size_t shared_copy = 256 * 1024;  // rendezvous payloads from this size copied by both sides (0: never)
  bool cma = false;
  // Kernel copies whose destination lies 1-15 bytes past the source (mod 4 KiB) go
  // through a bounce buffer: where this CPU's copy suffers there (measured once per
  // process), always, or never (IPC_SHM_BOUNCE; shm_transport.cpp, kernel_aliased).
  enum class Bounce { when_slow, always, never } bounce = Bounce::when_slow;
};

class ShmTransport final : public Transport {
 public:
  /// Creates this rank's segment. @throws ipc::Error naming it.
  explicit ShmTransport(Options opt);
  ~ShmTransport() override;

  std::string_view name() const override { return "shm"; }
  std::string card() const override;
  bool reaches(const PeerCard& me, const PeerCard& peer) const override;
  Endpoint& connect(const PeerCard& peer) override;
  std::size_t eager_limit() const override { return opt_.eager_limit; }
  std::size_t eager_room_limit() const override { return opt_.eager_room; }
  std::size_t eager_drained_limit() const override { return opt_.eager_drained; }
  bool single_copy() const override { return opt_.cma; }
  bool poll(Sink& sink) override;
  bool idle() const override;
  void ready() override { own_.unlink(); }
  bool arm_sleep(std::uint64_t wants) override;
  void disarm_sleep(std::uint64_t wants) override;
  bool polling(int delta) override;
  void check_peers(Sink& sink) override;
  void close() override;

  /// Whether a kernel copy of `n` bytes from `src` to `dst` goes through a bounce
  /// buffer (Options::bounce; the .cpp says why).
  bool kernel_aliased(std::uintptr_t dst, std::uintptr_t src, std::size_t n) const;
  bool kernel_aliased(const Endpoint::ReadPiece& p) const;
  /// Whether process_vm_readv may copy between this job's ranks here (IPC_SHM_CMA=auto).
  static bool single_copy_allowed();
  /// System calls that have read from peers' memory so far (read(), read_many()).
  std::uint64_t read_calls() const { return read_calls_; }
  /// Bytes of each ring for `local_size` ranks on a node (IPC_SHM_RING, or auto).
  /// @throws ipc::UsageError for a bad IPC_SHM_RING.
  static std::size_t ring_bytes_for(int local_size);

 private:
  struct Out {
    std::byte head[wire::kMaxHead];
    std::uint8_t head_size = 0;
    const std::byte* payload = nullptr;
    std::size_t length = 0;
    std::size_t sent = 0;  // payload bytes already in the ring
    bool started = false;  // the frame record is in the ring
    std::uint64_t concerns = wire::kConcernsAll;
    Completion* done = nullptr;
    std::unique_ptr<std::byte[]> owned;
    Out() = default;
    /// Frame `f` (its head copied), not started, completing `done`.
    Out(const wire::Frame& f, Completion* c)
        : head_size(static_cast<std::uint8_t>(std::min(f.head.size(), wire::kMaxHead))),
          payload(static_cast<const std::byte*>(f.payload)), length(static_cast<std::size_t>(f.length)),
          concerns(f.concerns), done(c) {
      std::memcpy(head, f.head.data(), head_size);
    }
  };
  // A peer of this node: its segment (where this rank's outbound ring lies), the
  // frames waiting for room in that ring, and its doorbell.
  struct Peer final : Endpoint {
    Peer(ShmTransport& t, int rank) : Endpoint(t, rank), shm(t), rank(rank) {}
    void send(const wire::Frame& f, Completion* done) override;
    bool send_now(const wire::Frame& f) override;
    [[gnu::noinline]] bool send_records_now(const wire::Frame& f, std::size_t max);  // (off the small path)
    bool read(std::uint64_t remote, void* dst, std::size_t n) override;
    std::size_t read_many(const ReadPiece* pieces, std::size_t count) override;
    /// read_many() without the check for aliased pieces; one piece, through this
    /// thread's bounce buffer when aliased (see kernel_aliased in the .cpp).
    std::size_t read_pieces(const ReadPiece* pieces, std::size_t count);
    bool read_piece(const ReadPiece& piece);
    bool write(std::uint64_t remote, const void* src, std::size_t n) override;
    int offer(std::uint64_t cookie, std::size_t size) override;
    bool take_back(int slot, std::uint64_t cookie) override;
    void free_offer(int slot) override;
    bool claim(int slot, std::uint64_t cookie) override;
    bool map();
    Segment open_segment() const;
    void prepare();
    void disable_read() { caps_ &= ~(kOneSidedRead | kSharedCopy); }
    void enable_read() { caps_ |= kOneSidedRead | kSharedCopy; }

    ShmTransport& shm;
    int rank = -1;
    int pid = 0;
    std::string segment_name;  // from its card
    int segment_fd = -1;       // its owner's descriptor of it
    Segment segment;           // mapped at the first use (map())
    RingProducer out;
    RingControl* in = nullptr;  // the control of the ring it writes to this rank (offers to it)
    const std::byte* in_data = nullptr;  // ... and that ring's records
    std::deque<Out> queue;
    base::Doorbell::Address bell;
    bool lost = false;
    bool faulted = false;   // the first send mapped the segment, made the ring's pages present
    std::string fault;      // why either could not be (reported as the peer's loss)
    std::errc fault_code{};  // ... and what its sends complete with
    std::atomic<std::size_t> stalled{0};         // body bytes of the record that found no room
    std::atomic<std::uint64_t> stalled_tail{0};  // the producer's position then
  };
  struct Inbound {
    int rank = -1;  // the sender writing this ring
    RingConsumer ring;
    RingControl* control = nullptr;
    std::byte* data = nullptr;
    bool in_frame = false;
    std::atomic<bool> broken{false};
    std::uint64_t length = 0;  // of the frame being received
    Sink::Placement place{};
    std::size_t got = 0;
    bool live = false;  // its producer has started (RingControl::started): seen once, kept
    /// Whether the ring may hold records; a ring whose sender never sent is not
    /// looked at, so that its pages are never taken.
    bool started() {
      if (!live) [[unlikely]]
        live = control->started.load(std::memory_order_acquire) != 0;
      return live;
    }
  };

  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t start_frame(Peer& p, std::span<const std::byte> head, const std::byte* payload, std::uint64_t length,
                          std::size_t& need);
  bool push(Peer& p);
  void ring_bell(Peer& p, std::uint64_t concerns);
  void release(Inbound& in);
  bool drain(Inbound& in, Sink& sink);
  void broken(Inbound& in, Sink& sink, const std::string& why);
  /// A frame's head is in: asks the sink where its payload goes. False when the sink
  /// refused it (the peer is then broken).
  bool begin_frame(Inbound& in, Sink& sink, const std::byte* head, std::size_t head_size, std::uint64_t length);
  void refused(Inbound& in, Sink& sink, const char* why);
  /// Whether a record waits in one of this rank's rings, from shared memory alone (any
  /// thread, no lock).
  bool inbound_pending() const;

  Options opt_;
  // This rank's producers waiting for room pay a heavy fence, so that its consumers
  // release space with a light one (RingConsumer::release): not when oversubscribed,
  // where waiting for room is frequent and each heavy fence interrupts the other CPUs.
  bool heavy_ = !opt_.oversubscribed && base::light_fences();
  Segment own_;
  int held_ = -1;  // peers' segments are mapped through their owners' descriptors (1) or names (0); -1 not known yet
  std::vector<std::unique_ptr<Peer>> peers_;  // by rank; null unless reached through shm
  std::vector<Inbound> inbound_;              // by local index of the sender
  std::atomic<std::size_t> pending_peers_{0};  // peers with a non-empty queue
  std::uint64_t read_calls_ = 0;               // (read_calls())
  // Buffers of eager_limit bytes that held copied payloads (detach), kept for the next
  // ones: a burst of large eager sends into a full ring otherwise took and gave back
  // fresh heap pages every window (the allocator trims its heap's top), a page fault
  // per 4 KiB copied.
  std::vector<std::unique_ptr<std::byte[]>> spare_payloads_;
  bool pooled(const Out& o) const;  // its copy goes into a kept buffer
  void detach(Out& o);
  void recycle(Out& o);
};

}  // namespace ipc::transport::shm
