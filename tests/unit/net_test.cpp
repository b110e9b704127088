// Network helpers (base/net.hpp): interfaces by name or network, port ranges; and the
// TCP transport listening inside a port range.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "base/errors.hpp"
#include "error_of.hpp"
#include "base/net.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "wire/secret.hpp"

using namespace ipc;

namespace {


unsigned short port_of(const std::string& card) {
  return static_cast<unsigned short>(std::stoi(card.substr(card.rfind(':') + 1)));
}

}  // namespace

TEST(Net, InterfaceByNameOrNetwork) {
  EXPECT_EQ(net::interface_address("lo", "--iface"), "127.0.0.1");
  EXPECT_EQ(net::interface_address("127.0.0.0/8", "--iface"), "127.0.0.1");
  auto e = error_of([] { net::interface_address("nosuch0", "--iface"); });
  EXPECT_NE(e.find("--iface='nosuch0' matches no IPv4 interface of this host (it has: "), std::string::npos) << e;
  EXPECT_NE(e.find("lo 127.0.0.1"), std::string::npos) << e;
  EXPECT_NE(error_of([] { net::interface_address("10.0.0.0/40", "X"); }).find("X='10.0.0.0/40' is not"),
            std::string::npos);
  EXPECT_NE(error_of([] { net::interface_address("192.0.2.0/32", "X"); }).find("matches no IPv4 interface"),
            std::string::npos);
}

TEST(Net, PortRanges) {
  auto r = net::parse_port_range("40000-40010", "--port-range");
  EXPECT_EQ(r.first, 40000);
  EXPECT_EQ(r.last, 40010);
  for (const char* bad : {"", "5", "9-5", "0-10", "1-70000", "a-b", "10-"})
    EXPECT_EQ(error_of([&] { net::parse_port_range(bad, "--port-range"); }),
              std::string("--port-range='") + bad + "' is not a port range A-B with 1 <= A <= B <= 65535");
}

TEST(TcpTransport, ListensInsideItsPortRangeAndSaysWhenItIsFull) {
  auto secret = wire::make_secret();
  auto make = [&](unsigned short first, unsigned short last) {
    transport::tcp::Options o;
    o.rank = 0;
    o.size = 1;
    o.secret = secret;
    o.ports = net::PortRange{first, last};
    return std::make_unique<transport::tcp::TcpTransport>(o);
  };
  // Three transports in a range of three ports: each takes one, all inside.
  std::vector<std::unique_ptr<transport::tcp::TcpTransport>> t;
  unsigned short base = 0;
  // Below the kernel's ephemeral ports (32768 and up here), where outgoing connections
  // come and go; a range someone else holds is skipped.
  for (unsigned short try_base : {21950, 22950, 23950, 24950}) {
    t.clear();
    try {
      for (int i = 0; i < 3; ++i) t.push_back(make(try_base, try_base + 2));
      base = try_base;
      break;
    } catch (const Error&) {
    }
  }
  ASSERT_NE(base, 0) << "no free range of three ports found";
  std::set<unsigned short> ports;
  for (auto& x : t) {
    auto p = port_of(x->card());
    EXPECT_GE(p, base);
    EXPECT_LE(p, base + 2);
    ports.insert(p);
  }
  EXPECT_EQ(ports.size(), 3u);
  EXPECT_EQ(error_of([&] { make(base, base + 2); }),
            "tcp: no free port in IPC_TCP_PORTS=" + std::to_string(base) + "-" + std::to_string(base + 2) +
                " on 127.0.0.1 (every one is in use)");
}
