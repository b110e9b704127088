#include "wire/secret.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/errors.hpp"

namespace ipc::wire {

// The kernel's generator, straight: OpenSSL's RAND_bytes costs more to set up (its
// DRBG, about 9 million instructions) than a rank's whole start-up otherwise.
void random_bytes(std::byte* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("no random bytes from the system (getrandom: ") + std::strerror(errno) + ")");
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

Secret make_secret() {
  Secret s;
  random_bytes(s.data(), s.size());
  return s;
}

std::string to_hex(const std::byte* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    auto b = static_cast<unsigned>(data[i]);
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Secret> secret_from_hex(std::string_view hex) {
  Secret s;
  if (hex.size() != 2 * s.size()) return std::nullopt;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    s[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return s;
}

}  // namespace ipc::wire
