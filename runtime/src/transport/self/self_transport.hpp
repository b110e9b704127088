// The self transport: a rank's frames to itself, looped back in order on the next poll.
// The payload is copied at send, so the sender's buffer is free at once.
#pragma once

#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "transport/transport.hpp"

namespace ipc::transport::self {

class SelfTransport final : public Transport {
 public:
  explicit SelfTransport(int rank) : rank_(rank) {}

  std::string_view name() const override { return "self"; }
  std::string card() const override { return ""; }
  bool reaches(const PeerCard& me, const PeerCard& peer) const override { return me.rank == peer.rank; }
  void add_peer(const PeerCard&) override {}
  // Everything goes eagerly: a blocking send to oneself must not wait for the receive.
  std::size_t eager_limit() const override { return ~std::size_t{0}; }

  void send(int, const wire::FrameHeader& h, const void* payload, Completion* done) override {
    Frame f{h, std::vector<std::byte>(h.length)};
    if (h.length) std::memcpy(f.payload.data(), payload, h.length);
    queue_.push_back(std::move(f));
    queued_.store(queue_.size(), std::memory_order_seq_cst);
    if (done) done->complete({});
  }

  bool poll(Sink& sink) override {
    if (queue_.empty()) return false;
    // Deliver only what was queued before this poll: frames sent from a callback
    // wait for the next one, so the loop cannot run forever.
    for (std::size_t n = queue_.size(); n > 0 && !queue_.empty(); --n) {
      Frame f = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_seq_cst);
      auto place = sink.on_frame(rank_, f.header);
      if (f.header.length && place.data) std::memcpy(place.data, f.payload.data(), f.header.length);
      sink.on_frame_done(rank_, f.header, place.token);
    }
    return true;
  }

  bool idle() const override { return true; }
  // Frames to oneself wait for a poll: a thread must not sleep over them.
  bool arm_sleep() override { return queued_.load(std::memory_order_seq_cst) == 0; }
  void close() override { queue_.clear(); }

 private:
  struct Frame {
    wire::FrameHeader header;
    std::vector<std::byte> payload;
  };
  int rank_;
  std::deque<Frame> queue_;
  std::atomic<std::size_t> queued_{0};
};

}  // namespace ipc::transport::self
