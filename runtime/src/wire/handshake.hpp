// Mutual challenge-response authentication, the first bytes of every TCP connection
// (bootstrap, rank to rank, agent). Free of I/O: callers move the bytes.
//
//   client -> server  ClientHello  44 B: "IPCH", version u16, role u16, rank i32, nonce_c[32]
//   server -> client  ServerHello  68 B: "IPCS", nonce_s[32], HMAC(secret, "ipc-server" | hello | nonce_s)
//   client -> server  ClientProof  32 B: HMAC(secret, "ipc-client" | hello | nonce_s)
//
// Instead of its hello, a server may answer "IPCR" + 64 zero bytes: "we are both
// connecting; use the connection I opened to you" (TCP transport, see there).
//
// Both MACs cover the client's whole hello (so its role and rank are authenticated)
// and both nonces; the distinct labels stop a reflected proof. The server delivers
// nothing the client sends before the proof has been checked, and the client sends
// nothing after its proof until the server's MAC has been checked.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "wire/secret.hpp"

namespace ipc::wire {

enum class Role : std::uint16_t { bootstrap = 1, peer = 2, agent = 3 };

inline constexpr std::size_t kClientHelloSize = 44;
inline constexpr std::size_t kServerHelloSize = 68;
inline constexpr std::size_t kClientProofSize = 32;
inline constexpr std::uint16_t kHandshakeVersion = 1;

enum class HandshakeError { ok, bad_magic, bad_version, bad_role, bad_mac, redirected };
std::string to_string(HandshakeError e);

class ClientHandshake {
 public:
  ClientHandshake(const Secret& secret, Role role, std::int32_t rank);
  /// The first message, to send at once.
  std::span<const std::byte> hello() const { return hello_; }
  /// Checks the server's answer; on success `proof()` holds the bytes to send.
  HandshakeError on_server_hello(std::span<const std::byte, kServerHelloSize> in);
  std::span<const std::byte> proof() const { return proof_; }

 private:
  Secret secret_;
  std::array<std::byte, kClientHelloSize> hello_{};
  std::array<std::byte, kClientProofSize> proof_{};
};

class ServerHandshake {
 public:
  explicit ServerHandshake(const Secret& secret);
  /// Checks the client's hello; on success `reply()` holds the bytes to send.
  HandshakeError on_client_hello(std::span<const std::byte, kClientHelloSize> in);
  std::span<const std::byte> reply() const { return reply_; }
  /// The answer that turns a client away to the connection the server opened.
  static std::span<const std::byte> redirect();
  /// Checks the client's proof: only after `ok` is the peer trusted.
  HandshakeError on_client_proof(std::span<const std::byte, kClientProofSize> in) const;
  Role role() const { return role_; }
  std::int32_t rank() const { return rank_; }

 private:
  Secret secret_;
  std::array<std::byte, kClientHelloSize> hello_{};
  std::array<std::byte, kServerHelloSize> reply_{};
  Role role_{};
  std::int32_t rank_ = -1;
};

}  // namespace ipc::wire
