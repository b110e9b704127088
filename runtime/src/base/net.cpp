#include "base/net.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <fstream>

#include "base/errors.hpp"

namespace ipc::net {

HostPort parse_host_port(std::string_view text, std::string_view what) {
  auto fail = [&] {
    return BootstrapError(std::string(what) + "='" + std::string(text) + "' is not host:port");
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) throw fail();
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']')
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  unsigned long port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') throw fail();
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) throw fail();
  }
  if (port == 0) throw fail();
  hp.port = static_cast<std::uint16_t>(port);
  return hp;
}

namespace {

// "a.b.c.d/n" as a network address and mask (host order); false when malformed.
bool parse_cidr(std::string_view spec, std::uint32_t& net, std::uint32_t& mask) {
  auto slash = spec.find('/');
  if (slash == std::string_view::npos) return false;
  std::string addr(spec.substr(0, slash));
  std::string_view bits = spec.substr(slash + 1);
  in_addr a{};
  if (::inet_pton(AF_INET, addr.c_str(), &a) != 1 || bits.empty() || bits.size() > 2) return false;
  int n = 0;
  for (char c : bits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n > 32) return false;
  mask = n == 0 ? 0 : ~std::uint32_t{0} << (32 - n);
  net = ntohl(a.s_addr) & mask;
  return true;
}

}  // namespace

std::vector<InterfaceAddress> ipv4_addresses() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    out.push_back({i->ifa_name, text, ntohl(sin->sin_addr.s_addr)});
  }
  ::freeifaddrs(list);
  return out;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  return name;
}

std::string interface_address(std::string_view spec, std::string_view what) {
  const bool cidr = spec.find('/') != std::string_view::npos;
  std::uint32_t net = 0, mask = 0;
  if (cidr && !parse_cidr(spec, net, mask))
    throw UsageError(std::string(what) + "='" + std::string(spec) + "' is not an interface name or an IPv4 network (a.b.c.d/n)");
  std::string have;
  for (auto& a : ipv4_addresses()) {
    if (cidr ? (a.value & mask) == net : spec == a.interface) return a.address;
    have += (have.empty() ? "" : ", ") + a.interface + " " + a.address;
  }
  throw UsageError(std::string(what) + "='" + std::string(spec) + "' matches no IPv4 interface of this host (it has: " +
                   (have.empty() ? "none" : have) + ")");
}

PortRange parse_port_range(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return UsageError(std::string(what) + "='" + std::string(text) + "' is not a port range A-B with 1 <= A <= B <= 65535");
  };
  auto dash = text.find('-');
  if (dash == std::string_view::npos) throw bad();
  auto number = [&](std::string_view s) {
    if (s.empty() || s.size() > 5) throw bad();
    unsigned long v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') throw bad();
      v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (v < 1 || v > 65535) throw bad();
    return static_cast<std::uint16_t>(v);
  };
  PortRange r{number(text.substr(0, dash)), number(text.substr(dash + 1))};
  if (r.first > r.last) throw bad();
  return r;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace ipc::net
