// The self transport: a rank's frames to itself, looped back in order on the next poll.
// Head and payload are copied at send, so the sender's buffer is free at once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "base/copy.hpp"
#include "transport/transport.hpp"

namespace ipc::transport::self {

class SelfTransport final : public Transport {
 public:
  explicit SelfTransport(int rank) : rank_(rank), endpoint_(*this, rank) {}

  std::string_view name() const override { return "self"; }
  std::string card() const override { return ""; }
  bool reaches(const PeerCard& me, const PeerCard& peer) const override { return me.rank == peer.rank; }
  Endpoint& connect(const PeerCard&) override { return endpoint_; }
  // Everything goes eagerly: a blocking send to oneself must not wait for the receive.
  std::size_t eager_limit() const override { return ~std::size_t{0}; }

  bool poll(Sink& sink) override {
    if (queue_.empty()) return false;
    // Deliver only what was queued before this poll: frames sent from a callback
    // wait for the next one, so the loop cannot run forever.
    for (std::size_t n = queue_.size(); n > 0 && !queue_.empty(); --n) {
      Frame f = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_seq_cst);
      auto place = sink.on_frame(rank_, {f.head, f.head_size}, f.payload.size());
      if (const char* why = place.error()) {  // as any transport would: the peer (itself) is dropped
        broken_ = true;
        queue_.clear();
        queued_.store(0, std::memory_order_seq_cst);
        sink.on_peer_lost(rank_, std::string("malformed frame: ") + why);
        return true;
      }
      if (!f.payload.empty() && place.data) base::copy_bytes(place.data, f.payload.data(), f.payload.size());
      sink.on_frame_done(rank_, place.token);
    }
    return true;
  }

  bool idle() const override { return true; }
  // Frames to oneself wait for a poll: a thread must not sleep over them.
  bool arm_sleep(std::uint64_t) override { return queued_.load(std::memory_order_seq_cst) == 0; }
  void close() override { queue_.clear(); }

 private:
  struct Frame {
    std::byte head[wire::kMaxHead];
    std::size_t head_size = 0;
    std::vector<std::byte> payload;
  };
  class Loop final : public Endpoint {
   public:
    Loop(SelfTransport& t, int rank) : Endpoint(t, rank), t_(t) {}
    void send(const wire::Frame& f, Completion* done) override {
      if (t_.broken_) {
        if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
        return;
      }
      Frame q;
      q.head_size = std::min(f.head.size(), wire::kMaxHead);
      std::memcpy(q.head, f.head.data(), q.head_size);
      q.payload.resize(f.length);
      if (f.length) base::copy_bytes(q.payload.data(), f.payload, f.length);
      t_.queue_.push_back(std::move(q));
      t_.queued_.store(t_.queue_.size(), std::memory_order_seq_cst);
      if (done) done->complete({});
    }

   private:
    SelfTransport& t_;
  };

  int rank_;
  Loop endpoint_;
  std::deque<Frame> queue_;
  std::atomic<std::size_t> queued_{0};
  bool broken_ = false;
};

}  // namespace ipc::transport::self
