// The TCP transport's receive path (framing, staging, direct reads), fed arbitrary
// bytes by an authenticated peer over a real loopback connection. It must never
// crash, never place more bytes than a frame announced, and report the peer lost
// (or deliver frames) instead of hanging.
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "fuzz.hpp"
#include "core/protocol.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "wire/handshake.hpp"

using namespace ipc;
using namespace ipc::transport;

namespace {

// Reads heads as the engine does (its protocol decoder sees fuzzed heads too).
struct Recorder final : transport::Sink {
  std::vector<std::byte> landing;
  bool lost = false;
  Placement on_frame(int, std::span<const std::byte> head, std::uint64_t length) override {
    if (length > (1u << 20)) __builtin_trap();  // the limit below
    if (head.empty() || head.size() > wire::kMaxHead) __builtin_trap();
    wire::FrameLimits lim;
    lim.max_payload = 1u << 20;
    detail::proto::Header h;
    if (const char* bad = detail::proto::decode(head, length, lim, h)) return Placement::refuse(bad);
    landing.assign(length, std::byte{0});
    return {landing.data(), nullptr};
  }
  void on_frame_done(int, void*) override {}
  void on_frame_aborted(int, void*) override {}
  void on_peer_lost(int, const std::string&) override { lost = true; }
};

struct Fixture {
  wire::Secret secret = wire::make_secret();
  std::unique_ptr<tcp::TcpTransport> t;
  Fixture() {
    tcp::Options o;
    o.rank = 1;
    o.size = 2;
    o.secret = secret;
    o.limits.max_payload = 1u << 20;
    t = std::make_unique<tcp::TcpTransport>(o);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture fx;  // fresh each time: a transport reports a lost peer once
  Recorder sink;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  auto card = fx.t->card();
  auto colon = card.rfind(':');
  auto server = asio::ip::make_address(card.substr(0, colon));
  // This side closes first, so each input leaves a connection in TIME_WAIT for a
  // minute: thousands of inputs a second would use up the ephemeral ports of one
  // address (connect then fails). Over loopback, each input comes from another of
  // 127.0.0.0/8's addresses, each with ports of its own.
  if (server.is_v4() && server.is_loopback()) {
    static unsigned n = 0;
    ++n;
    asio::ip::address_v4::bytes_type from{127, static_cast<unsigned char>(1 + (n / 250) % 250),
                                          static_cast<unsigned char>(1 + n % 250), 1};
    s.open(asio::ip::tcp::v4());
    s.bind(asio::ip::tcp::endpoint(asio::ip::address_v4(from), 0));
  }
  // The harness's own connection: when the machine refuses it (ports, backlog), the
  // input is not run rather than reported as the transport's fault.
  asio::error_code connected;
  s.connect(asio::ip::tcp::endpoint(server, static_cast<unsigned short>(std::stoi(card.substr(colon + 1)))),
            connected);
  if (connected) return 0;
  wire::ClientHandshake hs(fx.secret, wire::Role::peer, 0);
  asio::write(s, asio::buffer(hs.hello().data(), hs.hello().size()));
  std::array<std::byte, wire::kServerHelloSize> reply;
  std::size_t got = 0;
  s.non_blocking(true);
  while (got < reply.size()) {
    fx.t->poll(sink);
    asio::error_code ec;
    got += s.read_some(asio::buffer(reply.data() + got, reply.size() - got), ec);
    if (ec && ec != asio::error::would_block) return 0;
  }
  s.non_blocking(false);
  if (auto e = hs.on_server_hello(reply); e != wire::HandshakeError::ok) {
    std::fprintf(stderr, "handshake: %s\n", wire::to_string(e).c_str());
    __builtin_trap();
  }
  asio::write(s, asio::buffer(hs.proof().data(), hs.proof().size()));
  asio::error_code ec;
  asio::write(s, asio::buffer(data, size), ec);
  s.close();  // the end of the stream: the transport must see the peer go
  for (int i = 0; i < 100000 && !sink.lost; ++i) fx.t->poll(sink);
  if (!sink.lost) __builtin_trap();  // a closed peer must be noticed
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::uint64_t len : {0ull, 8ull, 70000ull}) {
    detail::proto::Header h;
    h.type = detail::proto::Type::eager;
    detail::proto::Encoded e;
    detail::proto::encode(h, e);
    std::vector<std::uint8_t> f(wire::kStreamPrefix + e.size + std::min<std::uint64_t>(len, 100));
    wire::encode_prefix(e.size, len, std::span<std::byte, wire::kStreamPrefix>(reinterpret_cast<std::byte*>(f.data()), wire::kStreamPrefix));
    std::memcpy(f.data() + wire::kStreamPrefix, e.bytes, e.size);
    out.push_back(f);
  }
  return out;
}
