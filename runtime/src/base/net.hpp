// Small socket helpers shared by the TCP transport and the bootstrap client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ipc::net {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

/// Parses "host:port" (IPv4, a name, or "[v6]:port"). @throws ipc::BootstrapError
/// naming `what` on a malformed string.
HostPort parse_host_port(std::string_view text, std::string_view what);

/// The kernel's boot id, or "" when unknown.
std::string boot_id();

/// This host's name (gethostname), "localhost" when it has none.
std::string host_name();

/// This host's IPv4 addresses, with the names of their interfaces.
struct InterfaceAddress {
  std::string interface;
  std::string address;      // dotted
  std::uint32_t value = 0;  // host order
};
std::vector<InterfaceAddress> ipv4_addresses();

/// The IPv4 address this host has on the interface `spec` names: an interface name
/// ("eth0") or a network in CIDR form ("10.1.0.0/16", the first address inside it).
/// @throws ipc::UsageError naming `what` (the option or variable) and `spec`, and
/// listing the host's interfaces, when none matches or `spec` is malformed.
std::string interface_address(std::string_view spec, std::string_view what);

/// A range of TCP ports, both ends included.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
};
/// Parses "A-B" (1 <= A <= B <= 65535). @throws ipc::UsageError naming `what`.
PortRange parse_port_range(std::string_view text, std::string_view what);

}  // namespace ipc::net
