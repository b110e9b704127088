// Several ranks' transports in one process, for the unit tests: real sockets, real
// shared memory, real doorbells; the test polls every rank's transport itself.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/doorbell.hpp"
#include "base/names.hpp"
#include "transport/self/self_transport.hpp"
#include "transport/shm/shm_transport.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "transport/tcp/tls.hpp"
#include "wire/certificate.hpp"
#include "wire/secret.hpp"

namespace harness {

using namespace ipc::transport;
using namespace std::chrono_literals;

/// A frame's head in the tests: opaque bytes (transports never read them) that carry
/// a tag, so that tests can check order. `size` from 4 to kMaxHead.
inline std::vector<std::byte> head(std::uint32_t tag, std::size_t size = 12) {
  std::vector<std::byte> h(size, std::byte{0x5a});
  std::memcpy(h.data(), &tag, sizeof tag);
  return h;
}
inline std::uint32_t tag_of(const std::vector<std::byte>& h) {
  std::uint32_t t = 0;
  std::memcpy(&t, h.data(), sizeof t);
  return t;
}
/// Bytes that tell frames and positions apart.
inline std::vector<std::byte> pattern(std::size_t n, std::uint32_t salt) {
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131 + salt * 7 + (i >> 12)) & 0xff);
  return b;
}

/// The frames of the every-size check: payloads from 0 B to 64 MiB across every
/// transport's thresholds, each with a head of its own size.
struct EverySize {
  std::vector<std::size_t> sizes{0, 1, 35, 36, 37, 63, 64, 4096, 16383, 16384, 16385, 65535, 65536, 65537, 200000,
                                 1u << 20, 64u << 20};
  std::vector<std::vector<std::byte>> payloads, heads;
  EverySize() {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      payloads.push_back(pattern(sizes[i], static_cast<std::uint32_t>(i)));
      heads.push_back(head(static_cast<std::uint32_t>(i), std::size_t{4} + (i * 3) % (ipc::wire::kMaxHead - 3)));
    }
  }
};

/// Records every frame (each in a buffer of its own, so frames from many peers may
/// interleave), losses and aborts. `on_done` runs after a frame is recorded (a test's
/// re-entrant sends).
struct Collect : Sink {
  struct Msg {
    int peer = -1;
    std::vector<std::byte> head;
    std::vector<std::byte> data;
  };
  std::vector<Msg> got;
  std::vector<std::pair<int, std::string>> lost;
  int aborted = 0;
  int started = 0;
  const char* refuse = nullptr;  // non-null: refuse every head with this reason
  std::function<void(const Msg&)> on_done;
  std::function<void(int peer)> on_start;

  Placement on_frame(int peer, std::span<const std::byte> h, std::uint64_t length) override {
    if (refuse) return Placement::refuse(refuse);
    auto* m = new Msg{peer, {h.begin(), h.end()}, std::vector<std::byte>(length)};
    ++started;
    if (on_start) on_start(peer);
    return {m->data.data(), m};
  }
  void on_frame_done(int, void* token) override {
    std::unique_ptr<Msg> m(static_cast<Msg*>(token));
    got.push_back(std::move(*m));
    if (on_done) on_done(got.back());
  }
  void on_frame_aborted(int, void* token) override {
    delete static_cast<Msg*>(token);
    ++aborted;
  }
  void on_peer_lost(int peer, const std::string& why) override { lost.emplace_back(peer, why); }
  std::vector<Msg> from(int peer) const {
    std::vector<Msg> out;
    for (auto& m : got)
      if (m.peer == peer) out.push_back(m);
    return out;
  }
};

struct Done : Completion {
  int count = 0;
  int failed = 0;
  void complete(const std::error_code& ec) override {
    ++count;
    failed += ec ? 1 : 0;
  }
};

enum class Kind { self, shm, tcp, tls };  // tls: the TCP transport with IPC_TLS
inline const char* name_of(Kind k) {
  return k == Kind::self ? "self" : k == Kind::shm ? "shm" : k == Kind::tcp ? "tcp" : "tls";
}
inline bool over_tcp(Kind k) { return k == Kind::tcp || k == Kind::tls; }

/// One certificate for every test's ranks (making a key costs a little).
inline std::shared_ptr<tcp::TlsContext> test_tls() {
  static auto ctx = [] {
    std::string cert, key;
    ipc::wire::make_certificate("ipc test", 1, cert, key);
    return std::make_shared<tcp::TlsContext>(cert, key, cert);
  }();
  return ctx;
}

/// `n` ranks of one node, each with its doorbell and one transport of kind `k`, every
/// pair connected. Self has one rank (it reaches only itself).
struct Ranks {
  Kind kind;
  int n;
  std::string job;
  ipc::wire::Secret secret = ipc::wire::make_secret();
  std::vector<std::unique_ptr<ipc::base::Doorbell>> bells;
  std::vector<std::unique_ptr<Transport>> t;
  std::vector<std::vector<Endpoint*>> ep;  // ep[from][to]
  std::vector<Collect> sink;
  std::vector<int> pids;  // the pid each rank's card names (shm checks it for loss)

  Ranks(Kind k, int ranks, std::vector<int> card_pids = {}) : kind(k), n(k == Kind::self ? 1 : ranks), sink(n) {
    job = "unit" + std::to_string(::getpid()) + "x" + std::to_string(std::random_device{}());
    pids = card_pids.empty() ? std::vector<int>(static_cast<std::size_t>(n), ::getpid()) : card_pids;
    for (int r = 0; r < n; ++r) {
      bells.push_back(std::make_unique<ipc::base::Doorbell>(ipc::base::doorbell_name(job, r)));
      t.push_back(open(r));
    }
    std::vector<PeerCard> cards(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      cards[r].rank = r;
      cards[r].node = "n";
      cards[r].pid = pids[r];
      cards[r].cards[std::string(t[r]->name())] = t[r]->card();
    }
    ep.resize(static_cast<std::size_t>(n), std::vector<Endpoint*>(static_cast<std::size_t>(n), nullptr));
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        if (a != b || kind == Kind::self) ep[a][b] = &t[a]->connect(cards[b]);
    for (auto& x : t) x->ready();
  }

  std::unique_ptr<Transport> open(int r) {
    // Every rank of one node, as ipcrun would start it.
    Config cfg;
    cfg.rank = cfg.local_rank = r;
    cfg.size = cfg.local_size = n;
    cfg.job = job;
    cfg.secret = secret;
    cfg.doorbell = bells[r].get();
    if (kind == Kind::shm) {
      shm::Options o;
      static_cast<Config&>(o) = cfg;
      o.ring_bytes = 256 * 1024;
      return std::make_unique<shm::ShmTransport>(o);
    }
    if (over_tcp(kind)) {
      tcp::Options o;
      static_cast<Config&>(o) = cfg;
      if (kind == Kind::tls) o.tls = test_tls();
      return std::make_unique<tcp::TcpTransport>(o);
    }
    return std::make_unique<self::SelfTransport>(r);
  }

  /// Polls every live rank until `cond` holds (false after `limit`).
  template <class Cond>
  bool pump(Cond cond, std::chrono::seconds limit = 20s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
      if (std::chrono::steady_clock::now() > end) return false;
      for (int r = 0; r < n; ++r)
        if (t[r]) t[r]->poll(sink[r]);
    }
    return true;
  }

  void send(int from, int to, const std::vector<std::byte>& h, const void* payload, std::size_t length,
            Completion* done) {
    ep[from][to]->send(ipc::wire::Frame{h, payload, length}, done);
  }
};

}  // namespace harness
