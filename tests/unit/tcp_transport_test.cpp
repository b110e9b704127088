// The TCP transport between two in-process "ranks" over real loopback sockets.
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
#include "wire/handshake.hpp"

using namespace ipc;
using namespace ipc::transport;
using namespace std::chrono_literals;

namespace {

struct Collect : Sink {
  struct Msg {
    int peer;
    wire::FrameHeader h;
    std::vector<std::byte> data;
  };
  std::vector<Msg> got;
  std::vector<std::pair<int, std::string>> lost;
  std::vector<std::byte> landing;

  Placement on_frame(int, const wire::FrameHeader& h) override {
    landing.assign(h.length, std::byte{0});
    return {landing.data(), nullptr};
  }
  void on_frame_done(int peer, const wire::FrameHeader& h, void*) override { got.push_back({peer, h, landing}); }
  void on_peer_lost(int peer, const std::string& why) override { lost.emplace_back(peer, why); }
  void on_frame_aborted(int, const wire::FrameHeader&, void*) override { ++aborted; }
  int aborted = 0;
};

struct Done : Completion {
  int count = 0;
  std::error_code last;
  void complete(const std::error_code& ec) override {
    ++count;
    last = ec;
  }
};

struct Pair {
  wire::Secret secret = wire::make_secret();
  std::unique_ptr<tcp::TcpTransport> t[2];
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
      t[r]->add_peer(c);
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
};

wire::FrameHeader eager(int src, int tag, std::size_t len) {
  wire::FrameHeader h;
  h.type = wire::FrameType::eager;
  h.source = src;
  h.tag = tag;
  h.length = h.size = len;
  return h;
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
  p.t[0]->send(1, eager(0, 1, 1), &b, &d);
  p.t[1]->send(0, eager(1, 1, 1), &b, &d);
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

TEST(TcpTransport, FramesOfManySizesArriveInOrderAndIntact) {
  Pair p;
  std::vector<std::size_t> sizes{0, 1, 47, 48, 4096, 65535, 65536, 200000, 8u << 20};
  std::vector<std::vector<std::byte>> payloads;
  for (auto n : sizes) {
    std::vector<std::byte> b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131 + n) & 0xff);
    payloads.push_back(std::move(b));
  }
  Done done;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    p.t[0]->send(1, eager(0, static_cast<int>(i), sizes[i]), payloads[i].data(), &done);
  ASSERT_TRUE(p.pump([&] { return p.sink[1].got.size() == sizes.size() && done.count == int(sizes.size()); }));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(p.sink[1].got[i].peer, 0);
    EXPECT_EQ(p.sink[1].got[i].h.tag, static_cast<int>(i));
    EXPECT_EQ(p.sink[1].got[i].data, payloads[i]) << "frame " << i;
  }
  EXPECT_FALSE(done.last);
}

TEST(TcpTransport, SimultaneousConnectsEndWithOneConnectionAndNoLoss) {
  for (int round = 0; round < 20; ++round) {
    Pair p;
    Done d0, d1;
    std::uint64_t v0 = 100, v1 = 200;
    // Both send first: both open a connection; the lower rank's must win, and every
    // frame (queued on the losing connection too) must arrive in order.
    for (int i = 0; i < 10; ++i) {
      p.t[0]->send(1, eager(0, i, 8), &v0, &d0);
      p.t[1]->send(0, eager(1, i, 8), &v1, &d1);
    }
    ASSERT_TRUE(p.pump([&] {
      return p.sink[0].got.size() == 10 && p.sink[1].got.size() == 10 && p.t[0]->connections() == 1 &&
             p.t[1]->connections() == 1;
    })) << "round " << round << ": " << p.sink[0].got.size() << "/" << p.sink[1].got.size() << " frames, "
        << p.t[0]->connections() << "/" << p.t[1]->connections() << " connections";
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(p.sink[0].got[i].h.tag, i);
      EXPECT_EQ(p.sink[1].got[i].h.tag, i);
    }
    EXPECT_TRUE(p.sink[0].lost.empty());
    EXPECT_TRUE(p.sink[1].lost.empty());
  }
}

TEST(TcpTransport, BothDirectionsAtOnceUseOneConnectionEach) {
  Pair p;
  std::vector<std::byte> big(3u << 20, std::byte{7});
  Done d0, d1;
  for (int i = 0; i < 5; ++i) {
    p.t[0]->send(1, eager(0, i, big.size()), big.data(), &d0);
    p.t[1]->send(0, eager(1, i, big.size()), big.data(), &d1);
  }
  ASSERT_TRUE(p.pump([&] { return p.sink[0].got.size() == 5 && p.sink[1].got.size() == 5; }));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(p.sink[0].got[i].h.tag, i);
    EXPECT_EQ(p.sink[1].got[i].h.tag, i);
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
  std::array<std::byte, wire::kFrameHeaderSize> head;
  wire::encode_header(eager(0, 99, 0), head);
  asio::write(s, asio::buffer(forged));
  asio::error_code ec;
  asio::write(s, asio::buffer(head), ec);
  // Then a real peer sends a frame: it alone must arrive.
  Done d;
  std::byte one{1};
  p.t[0]->send(1, eager(0, 5, 1), &one, &d);
  ASSERT_TRUE(p.pump([&] { return !p.sink[1].got.empty(); }));
  for (int i = 0; i < 1000; ++i) p.t[1]->poll(p.sink[1]);
  ASSERT_EQ(p.sink[1].got.size(), 1u);
  EXPECT_EQ(p.sink[1].got[0].h.tag, 5);
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
  std::array<std::byte, wire::kFrameHeaderSize> head;
  wire::encode_header(eager(0, 3, 1u << 20), head);
  asio::write(s, asio::buffer(head));
  std::vector<char> half(512 * 1024, 'h');
  asio::write(s, asio::buffer(half));
  ASSERT_TRUE(p.pump([&] { return p.sink[1].landing.size() == (1u << 20); }));
  s.close();
  ASSERT_TRUE(p.pump([&] { return !p.sink[1].lost.empty(); }));
  EXPECT_EQ(p.sink[1].aborted, 1);
  EXPECT_TRUE(p.sink[1].got.empty());
  EXPECT_EQ(p.sink[1].lost[0].first, 0);
}

TEST(TcpTransport, PeerGoneIsReportedAndSendsFail) {
  Pair p;
  Done d;
  std::byte b{1};
  p.t[0]->send(1, eager(0, 1, 1), &b, &d);
  ASSERT_TRUE(p.pump([&] { return !p.sink[1].got.empty(); }));
  p.t[1].reset();  // rank 1 ends
  auto end = std::chrono::steady_clock::now() + 10s;
  while (p.sink[0].lost.empty() && std::chrono::steady_clock::now() < end) p.t[0]->poll(p.sink[0]);
  ASSERT_EQ(p.sink[0].lost.size(), 1u);
  EXPECT_EQ(p.sink[0].lost[0].first, 1);
  Done after;
  p.t[0]->send(1, eager(0, 2, 1), &b, &after);
  EXPECT_EQ(after.count, 1);
  EXPECT_TRUE(after.last);
}
