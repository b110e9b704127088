#include "wire/handshake.hpp"

#include "wire/hmac.hpp"

#include <cstring>
#include <stdexcept>
#include <string_view>

namespace ipc::wire {
namespace {

constexpr char kClientMagic[4] = {'I', 'P', 'C', 'H'};
constexpr char kServerMagic[4] = {'I', 'P', 'C', 'S'};
constexpr char kRedirectMagic[4] = {'I', 'P', 'C', 'R'};
constexpr std::size_t kNonce = 32;

using Mac = std::array<std::byte, 32>;

Mac mac(const Secret& secret, std::string_view label, std::span<const std::byte> hello,
        std::span<const std::byte> nonce_s) {
  const std::span<const std::byte> parts[] = {std::as_bytes(std::span(label.data(), label.size())), hello, nonce_s};
  return hmac_sha256(std::span<const std::byte>(secret.data(), secret.size()), parts);
}

}  // namespace

std::string to_string(HandshakeError e) {
  switch (e) {
    case HandshakeError::ok: return "ok";
    case HandshakeError::bad_magic: return "not an ipc peer (bad greeting)";
    case HandshakeError::bad_version: return "unsupported handshake version";
    case HandshakeError::bad_role: return "unknown peer role";
    case HandshakeError::bad_mac: return "authentication failed (wrong job secret)";
    case HandshakeError::redirected: return "redirected to the peer's own connection";
  }
  return "unknown handshake error";
}

ClientHandshake::ClientHandshake(const Secret& secret, Role role, std::int32_t rank) : secret_(secret) {
  std::byte* p = hello_.data();
  std::memcpy(p, kClientMagic, 4);
  std::uint16_t version = kHandshakeVersion, r = static_cast<std::uint16_t>(role);
  std::memcpy(p + 4, &version, 2);
  std::memcpy(p + 6, &r, 2);
  std::memcpy(p + 8, &rank, 4);
  random_bytes(p + 12, kNonce);
}

std::span<const std::byte> ServerHandshake::redirect() {
  static const std::array<std::byte, kServerHelloSize> bytes = [] {
    std::array<std::byte, kServerHelloSize> b{};
    std::memcpy(b.data(), kRedirectMagic, 4);
    return b;
  }();
  return bytes;
}

HandshakeError ClientHandshake::on_server_hello(std::span<const std::byte, kServerHelloSize> in) {
  if (std::memcmp(in.data(), kRedirectMagic, 4) == 0) return HandshakeError::redirected;
  if (std::memcmp(in.data(), kServerMagic, 4) != 0) return HandshakeError::bad_magic;
  auto nonce_s = in.subspan(4, kNonce);
  Mac expect = mac(secret_, "ipc-server", hello_, nonce_s);
  if (!equal_secret(expect, in.subspan(4 + kNonce, 32))) return HandshakeError::bad_mac;
  Mac proof = mac(secret_, "ipc-client", hello_, nonce_s);
  std::memcpy(proof_.data(), proof.data(), proof.size());
  return HandshakeError::ok;
}

ServerHandshake::ServerHandshake(const Secret& secret) : secret_(secret) {}

HandshakeError ServerHandshake::on_client_hello(std::span<const std::byte, kClientHelloSize> in) {
  if (std::memcmp(in.data(), kClientMagic, 4) != 0) return HandshakeError::bad_magic;
  std::uint16_t version = 0, role = 0;
  std::memcpy(&version, in.data() + 4, 2);
  std::memcpy(&role, in.data() + 6, 2);
  if (version != kHandshakeVersion) return HandshakeError::bad_version;
  if (role < 1 || role > 3) return HandshakeError::bad_role;
  role_ = static_cast<Role>(role);
  std::memcpy(&rank_, in.data() + 8, 4);
  std::memcpy(hello_.data(), in.data(), kClientHelloSize);
  std::byte* p = reply_.data();
  std::memcpy(p, kServerMagic, 4);
  random_bytes(p + 4, kNonce);
  Mac m = mac(secret_, "ipc-server", hello_, std::span<const std::byte>(p + 4, kNonce));
  std::memcpy(p + 4 + kNonce, m.data(), m.size());
  return HandshakeError::ok;
}

HandshakeError ServerHandshake::on_client_proof(std::span<const std::byte, kClientProofSize> in) const {
  Mac expect = mac(secret_, "ipc-client", hello_, std::span<const std::byte>(reply_.data() + 4, kNonce));
  return equal_secret(expect, in) ? HandshakeError::ok : HandshakeError::bad_mac;
}

}  // namespace ipc::wire
