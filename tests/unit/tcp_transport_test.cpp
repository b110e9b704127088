// The TCP transport between two in-process "ranks" over real loopback sockets: what
// only TCP has (connections, handshakes, strangers, congestion control). What every
// transport must do is in transport_conformance_test.cpp.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/read.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "ipc/errors.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "transport_harness.hpp"
#include "wire/handshake.hpp"

using namespace ipc;
using namespace ipc::transport;
using namespace std::chrono_literals;

namespace {

using harness::Collect;
using harness::Done;
using harness::head;
using harness::tag_of;

struct Pair {
  wire::Secret secret = wire::make_secret();
  std::unique_ptr<tcp::TcpTransport> t[2];
  Endpoint* ep[2] = {};
  Collect sink[2];

  explicit Pair(std::string congestion = tcp::Options{}.congestion) {
    for (int r = 0; r < 2; ++r) {
      tcp::Options o;
      o.rank = r;
      o.size = 2;
      o.secret = secret;
      o.congestion = congestion;
      t[r] = std::make_unique<tcp::TcpTransport>(o);
    }
    for (int r = 0; r < 2; ++r) {
      PeerCard c;
      c.rank = 1 - r;
      c.node = "n";
      c.cards["tcp"] = t[1 - r]->card();
      ep[r] = &t[r]->connect(c);
    }
  }
  template <class Cond>
  bool pump(Cond cond, std::chrono::seconds limit = 10s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
      if (std::chrono::steady_clock::now() > end) return false;
      t[0]->poll(sink[0]);
      t[1]->poll(sink[1]);
    }
    return true;
  }
  void send(int from, std::uint32_t tag, const void* payload, std::size_t len, Completion* done) {
    auto h = head(tag);
    ep[from]->send(wire::Frame{h, payload, len}, done);
  }
};

// The bytes of a frame as they go on the stream: prefix, head.
std::vector<std::byte> stream_head(std::uint32_t tag, std::uint64_t length) {
  auto h = head(tag);
  std::vector<std::byte> out(wire::kStreamPrefix + h.size());
  wire::encode_prefix(h.size(), length, std::span<std::byte, wire::kStreamPrefix>(out.data(), wire::kStreamPrefix));
  std::copy(h.begin(), h.end(), out.begin() + wire::kStreamPrefix);
  return out;
}

// A hand-made client connected to rank 1's listening socket.
void connect_raw(Pair& p, asio::ip::tcp::socket& s) {
  auto card = p.t[1]->card();
  auto colon = card.rfind(':');
  s.connect(asio::ip::tcp::endpoint(asio::ip::make_address(card.substr(0, colon)),
                                    static_cast<unsigned short>(std::stoi(card.substr(colon + 1)))));
}

// Sends the client's hello and returns rank 1's answer (rank 1 polls meanwhile).
std::array<std::byte, wire::kServerHelloSize> exchange_hellos(Pair& p, asio::ip::tcp::socket& s,
                                                              wire::ClientHandshake& hs) {
  asio::write(s, asio::buffer(hs.hello().data(), hs.hello().size()));
  std::array<std::byte, wire::kServerHelloSize> reply{};
  std::atomic<bool> replied{false};
  std::thread reader([&] {
    asio::error_code ec;
    asio::read(s, asio::buffer(reply), ec);
    replied = !ec;
  });
  bool ok = p.pump([&] { return replied.load(); });
  reader.join();
  EXPECT_TRUE(ok) << "no answer to the hello";
  return reply;
}

unsigned short port_of(const std::string& card) {
  return static_cast<unsigned short>(std::stoi(card.substr(card.rfind(':') + 1)));
}

// The congestion control of every connected TCP socket of this process with an end
// at one of `ports` (both ends of the pair's connection).
std::vector<std::string> congestion_of_connections(const std::vector<unsigned short>& ports) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = std::stoi(e.path().filename().string());
    sockaddr_in me{}, peer{};
    socklen_t a = sizeof me, b = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &a) != 0 || me.sin_family != AF_INET ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &b) != 0)
      continue;
    bool ours = false;
    for (auto p : ports) ours |= ntohs(me.sin_port) == p || ntohs(peer.sin_port) == p;
    if (!ours) continue;
    char name[32] = {};
    socklen_t n = sizeof name;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &n) == 0) out.emplace_back(name);
  }
  return out;
}

void connect_pair(Pair& p) {
  Done d;
  std::byte b{1};
  p.send(0, 1, &b, 1, &d);
  p.send(1, 1, &b, 1, &d);
  ASSERT_TRUE(p.pump([&] { return p.sink[0].got.size() == 1 && p.sink[1].got.size() == 1; }));
}

}  // namespace

TEST(TcpTransport, ConnectionsUseTheConfiguredCongestionControl) {
  // Root may set any algorithm the kernel has; others only those it allows.
  std::string usable;
  std::getline(std::ifstream(::geteuid() == 0 ? "/proc/sys/net/ipv4/tcp_available_congestion_control"
                                               : "/proc/sys/net/ipv4/tcp_allowed_congestion_control"),
               usable);
  for (std::string cc : {std::string("reno"), std::string("cubic"), std::string()}) {
    if (!cc.empty() && (" " + usable + " ").find(" " + cc + " ") == std::string::npos) continue;
    Pair p(cc);
    connect_pair(p);
    std::string want = cc;
    if (want.empty()) std::ifstream("/proc/sys/net/ipv4/tcp_congestion_control") >> want;
    auto got = congestion_of_connections({port_of(p.t[0]->card()), port_of(p.t[1]->card())});
    ASSERT_EQ(got.size(), 2u) << "both ends of one connection";
    EXPECT_EQ(got[0], want);
    EXPECT_EQ(got[1], want);
  }
}

TEST(TcpTransport, RefusedCongestionControlIsOneErrorNamingTheVariable) {
  tcp::Options o;
  o.congestion = "no-such-algorithm";
  o.congestion_required = false;  // the default refused: the system's stays, no error
  EXPECT_NO_THROW(tcp::TcpTransport{o});
  o.congestion_required = true;  // asked for by name
  try {
    tcp::TcpTransport t(o);
    FAIL() << "accepted an unknown congestion control";
  } catch (const ipc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("IPC_TCP_CC='no-such-algorithm'"), std::string::npos) << e.what();
  }
}

TEST(TcpTransport, SimultaneousConnectsEndWithOneConnectionAndNoLoss) {
  for (int round = 0; round < 20; ++round) {
    Pair p;
    Done d0, d1;
    std::uint64_t v0 = 100, v1 = 200;
    // Both send first: both open a connection; the lower rank's must win, and every
    // frame (queued on the losing connection too) must arrive in order.
    for (std::uint32_t i = 0; i < 10; ++i) {
      p.send(0, i, &v0, 8, &d0);
      p.send(1, i, &v1, 8, &d1);
    }
    ASSERT_TRUE(p.pump([&] {
      return p.sink[0].got.size() == 10 && p.sink[1].got.size() == 10 && p.t[0]->connections() == 1 &&
             p.t[1]->connections() == 1;
    })) << "round " << round << ": " << p.sink[0].got.size() << "/" << p.sink[1].got.size() << " frames, "
        << p.t[0]->connections() << "/" << p.t[1]->connections() << " connections";
    for (std::uint32_t i = 0; i < 10; ++i) {
      EXPECT_EQ(tag_of(p.sink[0].got[i].head), i);
      EXPECT_EQ(tag_of(p.sink[1].got[i].head), i);
    }
    EXPECT_TRUE(p.sink[0].lost.empty());
    EXPECT_TRUE(p.sink[1].lost.empty());
  }
}

TEST(TcpTransport, BothDirectionsAtOnceUseOneConnectionEach) {
  Pair p;
  std::vector<std::byte> big(3u << 20, std::byte{7});
  Done d0, d1;
  for (std::uint32_t i = 0; i < 5; ++i) {
    p.send(0, i, big.data(), big.size(), &d0);
    p.send(1, i, big.data(), big.size(), &d1);
  }
  ASSERT_TRUE(p.pump([&] { return p.sink[0].got.size() == 5 && p.sink[1].got.size() == 5; }));
  for (std::uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(tag_of(p.sink[0].got[i].head), i);
    EXPECT_EQ(tag_of(p.sink[1].got[i].head), i);
  }
  EXPECT_TRUE(p.sink[0].lost.empty());
}

TEST(TcpTransport, StrangerWithWrongSecretDeliversNothing) {
  Pair p;
  // A stranger who knows the protocol but not the secret: it sends a hello, ignores
  // the server's answer, sends a forged proof and then a frame.
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  connect_raw(p, s);
  wire::ClientHandshake hs(wire::make_secret(), wire::Role::peer, 0);
  auto reply = exchange_hellos(p, s, hs);
  std::array<std::byte, wire::kClientProofSize> forged{};
  auto frame = stream_head(99, 0);
  asio::write(s, asio::buffer(forged));
  asio::error_code ec;
  asio::write(s, asio::buffer(frame), ec);
  // Then a real peer sends a frame: it alone must arrive.
  Done d;
  std::byte one{1};
  p.send(0, 5, &one, 1, &d);
  ASSERT_TRUE(p.pump([&] { return !p.sink[1].got.empty(); }));
  for (int i = 0; i < 1000; ++i) p.t[1]->poll(p.sink[1]);
  ASSERT_EQ(p.sink[1].got.size(), 1u);
  EXPECT_EQ(tag_of(p.sink[1].got[0].head), 5u);
  EXPECT_TRUE(p.sink[1].lost.empty());  // a stranger is not a lost peer
}

TEST(TcpTransport, GarbageConnectionIsDropped) {
  Pair p;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  connect_raw(p, s);
  std::string junk(200, '\xff');
  asio::write(s, asio::buffer(junk));
  std::atomic<bool> closed{false};
  std::thread reader([&] {
    char buf[128];
    asio::error_code ec;
    while (!ec) s.read_some(asio::buffer(buf), ec);
    closed = true;
  });
  ASSERT_TRUE(p.pump([&] { return closed.load(); }));
  reader.join();
  EXPECT_TRUE(p.sink[1].got.empty());
}

TEST(TcpTransport, AFrameCutOffIsAbortedBeforeThePeerIsLost) {
  Pair p;
  // Rank 0, by hand: authenticate, announce 1 MiB, send half of it, vanish.
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  connect_raw(p, s);
  wire::ClientHandshake hs(p.secret, wire::Role::peer, 0);
  auto reply = exchange_hellos(p, s, hs);
  ASSERT_EQ(hs.on_server_hello(reply), wire::HandshakeError::ok);
  asio::write(s, asio::buffer(hs.proof().data(), hs.proof().size()));
  auto frame = stream_head(3, 1u << 20);
  asio::write(s, asio::buffer(frame));
  std::vector<char> half(512 * 1024, 'h');
  asio::write(s, asio::buffer(half));
  ASSERT_TRUE(p.pump([&] { return p.sink[1].started == 1; }));
  s.close();
  ASSERT_TRUE(p.pump([&] { return !p.sink[1].lost.empty(); }));
  EXPECT_EQ(p.sink[1].aborted, 1);
  EXPECT_TRUE(p.sink[1].got.empty());
  EXPECT_EQ(p.sink[1].lost[0].first, 0);
}
