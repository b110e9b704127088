#include "base/doorbell.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "base/errors.hpp"

namespace ipc::base {

Doorbell::Address Doorbell::Address::of(const std::string& name) {
  Address a;
  a.addr.sun_family = AF_UNIX;
  // A leading NUL: the abstract namespace (no file, gone with the socket).
  std::size_t n = std::min(name.size(), sizeof(a.addr.sun_path) - 2);
  std::memcpy(a.addr.sun_path + 1, name.data(), n);
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return a;
}

Doorbell::Doorbell(const std::string& name) : self_(Address::of(name)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&self_.addr), self_.len) != 0) {
    int e = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw Error("cannot create the doorbell @" + name + ": " + std::strerror(e));
  }
}

Doorbell::Doorbell(Doorbell&& o) noexcept { *this = std::move(o); }

Doorbell& Doorbell::operator=(Doorbell&& o) noexcept {
  std::swap(fd_, o.fd_);
  std::swap(self_, o.self_);
  return *this;
}

Doorbell::~Doorbell() {
  if (fd_ >= 0) ::close(fd_);
}

void Doorbell::ring(const Address& a) const {
  char b = 1;
  [[maybe_unused]] auto r = ::sendto(fd_, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&a.addr),
                                     a.len);
}

void Doorbell::drain() const {
  char buf[64];
  while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace ipc::base
