// Small socket helpers shared by the TCP transport and the bootstrap client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace ipc::net
