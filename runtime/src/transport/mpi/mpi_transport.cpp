// The MPI transport: frames between ranks of a job started by an MPI engine (mpirun,
// srun --mpi=pmix), over MPI point-to-point on a duplicate of MPI_COMM_WORLD. MPI only
// moves bytes; matching stays in the engine above.
//
// A frame is one MPI message on tag kFrame: a 12-byte prefix (kind, head size, payload
// length), the head, and, for a payload of at most IPC_MPI_INLINE bytes, the payload
// (copied). Eight receives for frames are always posted (any source, each as large as
// the largest frame), so a frame lands in one as it arrives; they are taken in the
// order they were posted, which is the order MPI matches them in. A larger payload follows as messages of its own on tag kPayload, sent from
// and received into the engine's buffers without a copy (in pieces of at most 1 GiB,
// MPI's counts being ints). MPI keeps messages of one sender and one tag in order, so
// the receiver, which posts a peer's payload receives when it reads the frame that
// announces them, always pairs them right; frames that arrive from a peer while its
// payload is still coming wait, so that the engine sees each peer's frames one after
// another, as from every transport.
//
// Threading: the engine calls the transport only under its progress lock, so one
// thread at a time makes MPI calls: MPI_THREAD_SERIALIZED is what it asks for (and
// all it needs; MPI_THREAD_MULTIPLE is not required of the library). MPI has no
// descriptor to sleep on, so a sleeping waiter polls it every IPC_MPI_SLEEP_POLL_MS
// (Transport::sleep_poll): that is the latency of a message to a rank that has been
// waiting long enough to sleep.
//
// MPI is initialised by the first transport opened under an MPI engine, unless the
// program did it itself, and finalised when the transport goes, if it initialised it.
// A rank that dies takes the job with it (MPI reports no lost peers): mpirun and srun
// end the others.
//
// MPI itself is in the engines module (engines/abi.hpp), loaded at start-up under an
// engine only: MPI calls go through its table, `M()`, handles are integers.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/errors.hpp"
#include "base/params.hpp"
#include "engines/abi.hpp"
#include "transport/registry.hpp"

namespace ipc::transport::mpi {
namespace {

constexpr int kFrame = 1, kPayload = 2;
constexpr std::size_t kPrefix = 12;  // kind (1), head size (1), 2 unused, payload length (8)
constexpr std::uint64_t kPiece = std::uint64_t{1} << 30;

using engines::Handle;

// MPI, through the engines module.
const engines::MpiCalls& M() { return engines::mpi(); }

std::string mpi_error(int code) {
  char text[512];
  int n = M().error_string(code, text, sizeof text);
  return std::string(text, static_cast<std::size_t>(std::max(0, n)));
}

void check(int code, const char* what) {
  if (code != M().success) throw Error(std::string("mpi transport: ") + what + ": " + mpi_error(code));
}

class MpiTransport;

class MpiEndpoint final : public Endpoint {
 public:
  MpiEndpoint(MpiTransport& t, int peer);
  void send(const wire::Frame& f, Completion* done) override;

 private:
  MpiTransport& t_;
};

class MpiTransport final : public Transport {
 public:
  MpiTransport(const Config& cfg, std::size_t eager, std::size_t inline_limit, std::chrono::milliseconds sleep_poll)
      : cfg_(cfg), eager_(eager), inline_(inline_limit), sleep_poll_(sleep_poll) {
    int ready = 0;
    check(M().initialized(&ready), "MPI_Initialized");
    if (!ready) {
      int provided = 0;
      check(M().init_thread(M().thread_serialized, &provided), "MPI_Init_thread");
      finalize_ = true;
      if (provided < M().thread_serialized)
        throw Error("mpi transport: the MPI library offers thread level " + std::to_string(provided) +
                    ", below MPI_THREAD_SERIALIZED (the ranks' threads take turns making MPI calls)");
    }
    comm_ = M().comm_null;
    check(M().dup_world(&comm_), "MPI_Comm_dup");
    int size = 0, rank = 0;
    M().comm_size(comm_, &size);
    M().comm_rank(comm_, &rank);
    if (size != cfg.size || rank != cfg.rank)
      throw Error("mpi transport: MPI_COMM_WORLD has rank " + std::to_string(rank) + " of " + std::to_string(size) +
                  ", the job rank " + std::to_string(cfg.rank) + " of " + std::to_string(cfg.size) +
                  " (the engine that started the job is not the one MPI sees)");
    peers_.resize(static_cast<std::size_t>(size));
    // Receives for frames, posted ahead (any source), so that a frame lands in one as
    // it arrives instead of waiting in MPI's unexpected queue for a probe.
    frame_bytes_ = kPrefix + wire::kMaxHead + inline_;
    posted_.resize(kPosted);
    for (auto& r : posted_) {
      r.buffer.resize(frame_bytes_);
      post(r);
    }
  }

  ~MpiTransport() override {
    close();
    if (comm_ != M().comm_null) M().comm_free(&comm_);
    if (finalize_) M().finalize();
  }

  std::string_view name() const override { return "mpi"; }
  // The job (its MPI world) and this rank's place in it.
  std::string card() const override { return cfg_.job + ":" + std::to_string(cfg_.rank); }
  bool reaches(const PeerCard& me, const PeerCard& peer) const override {
    auto a = me.cards.find("mpi"), b = peer.cards.find("mpi");
    if (a == me.cards.end() || b == peer.cards.end()) return false;
    return a->second.substr(0, a->second.rfind(':')) == b->second.substr(0, b->second.rfind(':'));
  }
  Endpoint& connect(const PeerCard& peer) override {
    auto& p = peers_.at(static_cast<std::size_t>(peer.rank));
    if (!p.endpoint) p.endpoint = std::make_unique<MpiEndpoint>(*this, peer.rank);
    return *p.endpoint;
  }
  std::size_t eager_limit() const override { return eager_; }
  bool idle() const override { return sends_.empty(); }
  std::chrono::milliseconds sleep_poll() const override { return sleep_poll_; }

  bool poll(Sink& sink) override {
    if (closed_) return false;
    bool did = finish_sends();
    did |= finish_payloads(sink);
    for (;;) {  // new frames, in the order their receives were posted (MPI's matching order)
      auto& r = posted_[next_];
      int flag = 0, source = -1, count = 0;
      int rc = M().test(&r.request, &flag, &source, &count);
      if (rc != M().success && source >= 0 && source < static_cast<int>(peers_.size())) {
        drop(sink, source, "a frame larger than IPC_MPI_INLINE allows here (every rank needs the same): " +
                               mpi_error(rc));
        post(r);
        next_ = (next_ + 1) % posted_.size();
        did = true;
        continue;
      }
      if (rc != M().success || !flag) break;
      did = true;
      auto& p = peers_[static_cast<std::size_t>(source)];
      std::span<const std::byte> frame(r.buffer.data(), static_cast<std::size_t>(count));
      if (!p.lost) {
        if (!p.pieces.empty() || !p.waiting.empty())
          p.waiting.emplace_back(frame.begin(), frame.end());  // after the payload still coming
        else
          deliver(sink, source, frame);
      }
      post(r);
      next_ = (next_ + 1) % posted_.size();
    }
    return did;
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    for (auto& s : sends_) {
      for (auto& r : s.requests)
        if (r != M().request_null) M().cancel(&r, 0);
      if (s.done) s.done->complete(std::make_error_code(std::errc::connection_aborted));
    }
    sends_.clear();
    for (auto& p : peers_)
      for (auto& r : p.pieces)
        if (r != M().request_null) M().cancel(&r, 0);
    for (auto& r : posted_)
      if (r.request != M().request_null) M().cancel(&r.request, 1);
  }

  // Called by the endpoint (under the progress lock).
  void send(int peer, const wire::Frame& f, Completion* done) {
    if (closed_ || peers_[static_cast<std::size_t>(peer)].lost) {
      if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
      return;
    }
    bool inlined = f.length <= inline_;
    Send s;
    s.buffer.resize(kPrefix + f.head.size() + (inlined ? f.length : 0));
    s.buffer[0] = std::byte{static_cast<unsigned char>(inlined ? 0 : 1)};
    s.buffer[1] = std::byte{static_cast<unsigned char>(f.head.size())};
    std::memcpy(s.buffer.data() + 4, &f.length, 8);
    std::memcpy(s.buffer.data() + kPrefix, f.head.data(), f.head.size());
    if (inlined && f.length) std::memcpy(s.buffer.data() + kPrefix + f.head.size(), f.payload, f.length);
    s.requests.push_back(M().request_null);
    int rc = M().isend(s.buffer.data(), static_cast<int>(s.buffer.size()), peer, kFrame, comm_, &s.requests.back());
    if (!inlined) {
      auto* p = static_cast<const char*>(f.payload);
      for (std::uint64_t off = 0; rc == M().success && off < f.length; off += kPiece) {
        s.requests.push_back(M().request_null);
        rc = M().isend(p + off, static_cast<int>(std::min(kPiece, f.length - off)), peer, kPayload, comm_,
                       &s.requests.back());
      }
    }
    if (rc != M().success) {  // MPI_ERRORS_RETURN: the peer cannot be reached
      if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
      lost_reports_.push_back({peer, "MPI_Isend: " + mpi_error(rc)});
      s.done = nullptr;
    } else if (inlined) {
      if (done) done->complete({});  // the payload was copied
    } else {
      s.done = done;
    }
    sends_.push_back(std::move(s));
  }

 private:
  struct Send {
    std::vector<std::byte> buffer;        // prefix, head (and an inlined payload)
    std::vector<Handle> requests;         // the frame, then the payload's pieces
    Completion* done = nullptr;           // for a payload sent from the engine's buffer
  };
  struct Peer {
    std::unique_ptr<MpiEndpoint> endpoint;
    std::vector<Handle> pieces;                   // the payload being received
    void* token = nullptr;
    std::vector<std::byte> scratch;               // a payload nobody wants
    std::deque<std::vector<std::byte>> waiting;   // frames that came meanwhile
    bool lost = false;
  };
  struct Lost {
    int peer;
    std::string why;
  };
  struct Posted {
    std::vector<std::byte> buffer;
    Handle request = M().request_null;
  };
  static constexpr std::size_t kPosted = 8;

  void post(Posted& r) {
    M().irecv(r.buffer.data(), static_cast<int>(frame_bytes_), M().any_source, kFrame, comm_, &r.request);
  }

  bool finish_sends() {
    bool did = false;
    for (auto it = sends_.begin(); it != sends_.end();) {
      int flag = 0;
      M().testall(static_cast<int>(it->requests.size()), it->requests.data(), &flag);
      if (!flag) {
        ++it;
        continue;
      }
      if (it->done) it->done->complete({});
      it = sends_.erase(it);
      did = true;
    }
    return did;
  }

  bool finish_payloads(Sink& sink) {
    bool did = false;
    for (auto& [peer, why] : lost_reports_) drop(sink, peer, why);
    lost_reports_.clear();
    for (std::size_t r = 0; r < peers_.size(); ++r) {
      auto& p = peers_[r];
      if (p.pieces.empty()) continue;
      int flag = 0;
      M().testall(static_cast<int>(p.pieces.size()), p.pieces.data(), &flag);
      if (!flag) continue;
      did = true;
      p.pieces.clear();
      p.scratch = {};
      sink.on_frame_done(static_cast<int>(r), p.token);
      // The frames that came meanwhile, until one of them has a payload to wait for.
      while (!p.lost && p.pieces.empty() && !p.waiting.empty()) {
        auto frame = std::move(p.waiting.front());
        p.waiting.pop_front();
        deliver(sink, static_cast<int>(r), std::span<const std::byte>(frame));
      }
    }
    return did;
  }

  void deliver(Sink& sink, int peer, std::span<const std::byte> frame) {
    auto& p = peers_[static_cast<std::size_t>(peer)];
    if (frame.size() < kPrefix) return drop(sink, peer, "a frame shorter than its prefix");
    auto kind = static_cast<unsigned>(frame[0]);
    std::size_t head = static_cast<std::size_t>(frame[1]);
    std::uint64_t length = 0;
    std::memcpy(&length, frame.data() + 4, 8);
    std::size_t inlined = kind == 0 ? length : 0;
    if (kind > 1 || head > wire::kMaxHead || kPrefix + head + inlined != frame.size())
      return drop(sink, peer, "a malformed frame");
    if (length > cfg_.limits.max_payload) return drop(sink, peer, "a frame longer than IPC_MAX_MESSAGE");
    auto place = sink.on_frame(peer, {frame.data() + kPrefix, head}, length);
    if (const char* why = place.error()) return drop(sink, peer, why);
    if (kind == 0) {
      if (length && place.data) std::memcpy(place.data, frame.data() + kPrefix + head, length);
      sink.on_frame_done(peer, place.token);
      return;
    }
    char* into = static_cast<char*>(place.data);
    if (!into) {
      p.scratch.resize(static_cast<std::size_t>(std::min(length, kPiece)));
    }
    p.token = place.token;
    for (std::uint64_t off = 0; off < length; off += kPiece) {
      p.pieces.push_back(M().request_null);
      auto n = static_cast<int>(std::min(kPiece, length - off));
      void* at = into ? static_cast<void*>(into + off) : static_cast<void*>(p.scratch.data());
      M().irecv(at, n, peer, kPayload, comm_, &p.pieces.back());
    }
    if (length == 0) sink.on_frame_done(peer, place.token);
  }

  void drop(Sink& sink, int peer, const std::string& why) {
    auto& p = peers_[static_cast<std::size_t>(peer)];
    if (p.lost) return;
    p.lost = true;
    if (!p.pieces.empty()) sink.on_frame_aborted(peer, p.token);
    p.pieces.clear();
    p.waiting.clear();
    sink.on_peer_lost(peer, "mpi: " + why);
  }

  Config cfg_;
  std::size_t eager_, inline_;
  std::chrono::milliseconds sleep_poll_;
  Handle comm_ = 0;  // the duplicate of MPI_COMM_WORLD (M().comm_null until made)
  bool finalize_ = false;
  bool closed_ = false;
  std::vector<Peer> peers_;
  std::list<Send> sends_;
  std::vector<Lost> lost_reports_;
  std::size_t frame_bytes_ = 0;  // the largest frame message: prefix, head, inlined payload
  std::vector<Posted> posted_;
  std::size_t next_ = 0;  // the oldest posted receive
};

MpiEndpoint::MpiEndpoint(MpiTransport& t, int peer) : Endpoint(t, peer), t_(t) {}
void MpiEndpoint::send(const wire::Frame& f, Completion* done) { t_.send(peer(), f, done); }

std::unique_ptr<Transport> open_mpi(const Config& cfg) {
  if (cfg.launcher != base::Launcher::engine) return nullptr;  // no MPI world to speak of
  auto eager = static_cast<std::size_t>(base::param_int("IPC_MPI_EAGER"));
  auto inlined = static_cast<std::size_t>(base::param_int("IPC_MPI_INLINE"));
  auto poll = std::chrono::milliseconds(std::max<std::int64_t>(1, base::param_int("IPC_MPI_SLEEP_POLL_MS")));
  return std::make_unique<MpiTransport>(cfg, eager, inlined, poll);
}

}  // namespace

extern const Descriptor descriptor;
const Descriptor descriptor{"mpi", &open_mpi};

}  // namespace ipc::transport::mpi
