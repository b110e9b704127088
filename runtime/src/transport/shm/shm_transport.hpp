// The shared-memory transport between ranks of one node.
//
// Each rank owns a segment holding one inbound ring per rank of its node (ring i is
// written only by the rank of local index i: single producer, single consumer, no
// locks). A frame is one record (frame header + payload); a payload larger than a
// record continues in `cont` records, so a large frame streams through the ring in
// pipelined chunks while the receiver copies out behind the sender. When a ring is
// full, frames wait in the sender's queue (small payloads copied, so eager sends
// complete at once) and leave on later polls: nothing is dropped, and since every
// poll also drains the inbound rings, two ranks flooding each other still progress.
//
// Large messages go by rendezvous (they land in the receiver's buffer, never in an
// unexpected-message copy), then either stream through the ring in pipelined chunks
// (the default: sender and receiver copy at once, on two cores), or, with
// IPC_SHM_CMA=1, are read in one copy with process_vm_readv where the kernel allows
// it (a refusal falls back to the chunked path). docs/transports.md has the figures
// behind the default.
//
// Waking a sleeping receiver: the receiver counts itself in its segment's `sleepers`
// before it sleeps and re-checks its rings; a sender that sees sleepers > 0 after
// publishing sends one datagram to the receiver's doorbell socket (abstract unix
// namespace), which the receiver sleeps on in epoll. Both sides order their store
// before their load (seq_cst), so a wake-up is never lost.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "transport/shm/ring.hpp"
#include "transport/shm/segment.hpp"
#include "transport/transport.hpp"

namespace ipc::transport::shm {

struct Options {
  int rank = 0;
  int size = 1;
  std::string job;
  int local_rank = 0;
  int local_size = 1;
  std::size_t ring_bytes = 512 * 1024;
  std::size_t eager_limit = 64 * 1024;
  std::size_t chunk = 16 * 1024;  // payload bytes per record: the pipeline's step
  bool cma = false;
  wire::FrameLimits limits{};
};

class ShmTransport final : public Transport {
 public:
  /// Creates this rank's segment and doorbell. @throws ipc::Error naming them.
  explicit ShmTransport(Options opt);
  ~ShmTransport() override;

  std::string_view name() const override { return "shm"; }
  std::string card() const override;
  bool reaches(const PeerCard& me, const PeerCard& peer) const override;
  void add_peer(const PeerCard& peer) override;
  std::size_t eager_limit() const override { return opt_.eager_limit; }
  void send(int peer, const wire::FrameHeader& h, const void* payload, Completion* done) override;
  bool poll(Sink& sink) override;
  int wait_fd() const override { return bell_; }
  bool idle() const override;
  void ready() override { own_.unlink(); }
  bool can_read(int peer) const override;
  bool read(int peer, std::uint64_t remote, void* dst, std::size_t n) override;
  bool arm_sleep() override;
  void disarm_sleep() override;
  void check_peers(Sink& sink) override;
  void close() override;

 private:
  struct Out {
    wire::FrameHeader header;
    const std::byte* payload = nullptr;
    std::size_t length = 0;
    std::size_t sent = 0;  // payload bytes already in the ring
    bool started = false;  // the frame record is in the ring
    Completion* done = nullptr;
    std::unique_ptr<std::byte[]> owned;
  };
  struct Peer {
    int rank = -1;
    int pid = 0;
    Segment segment;
    RingProducer out;
    std::deque<Out> queue;
    sockaddr_un bell{};
    socklen_t bell_len = 0;
    bool cma = true;
    bool lost = false;
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
    wire::FrameHeader frame{};
    Sink::Placement place{};
    std::size_t got = 0;
  };

  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t start_frame(Peer& p, const wire::FrameHeader& h, const std::byte* payload, std::size_t& need);
  bool push(Peer& p);
  void ring_bell(Peer& p);
  void send_bell(const sockaddr_un& a, socklen_t len);
  void release(Inbound& in);
  bool drain(Inbound& in, Sink& sink);
  void broken(Inbound& in, Sink& sink, const char* why);

  Options opt_;
  Segment own_;
  int bell_ = -1;       // this rank's doorbell (bound)
  int bell_out_ = -1;   // for ringing others (unbound)
  std::vector<std::unique_ptr<Peer>> peers_;  // by rank; null unless reached through shm
  std::vector<Inbound> inbound_;              // by local index of the sender
  std::atomic<std::size_t> pending_peers_{0};  // peers with a non-empty queue
};

}  // namespace ipc::transport::shm
