#include "base/net.hpp"

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

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace ipc::net
