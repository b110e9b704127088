// HMAC-SHA256 (RFC 2104) for the connection handshakes, over this file's own SHA-256
// (FIPS 180-4).
//
// Not OpenSSL's: a rank that links libcrypto loads it at every start, 0.7 ms of a
// process's start-up here (a program doing nothing: 1.1 against 1.8 ms; libssl 0.2 ms
// more), and the handshakes need one digest. (OpenSSL's EVP/HMAC interfaces cost more
// still: their provider machinery, about 6 million instructions at first use, was half
// of a rank's start-up for a single MAC.) TLS (transport/tcp/tls.hpp) loads OpenSSL,
// in its own module, only when a job asks for it.
#pragma once

#include <array>
#include <cstddef>
#include <span>

namespace ipc::wire {

using Sha256 = std::array<std::byte, 32>;

/// SHA-256 of `data`.
Sha256 sha256(std::span<const std::byte> data);

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
Sha256 hmac_sha256(std::span<const std::byte> key, std::span<const std::span<const std::byte>> parts);

/// Constant-time equality of two byte strings of the same length.
bool equal_secret(std::span<const std::byte> a, std::span<const std::byte> b);

}  // namespace ipc::wire
