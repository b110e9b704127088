// HMAC-SHA256 (RFC 2104) for the connection handshakes.
//
// Built on OpenSSL's one-shot SHA-256 rather than its EVP/HMAC interfaces: those
// load OpenSSL 3's provider machinery on first use, about 6 million instructions,
// which was half of a rank's whole start-up for a single MAC (measured with
// callgrind on examples/hello). The digest itself is OpenSSL's.
#pragma once

#include <array>
#include <cstddef>
#include <span>

namespace ipc::wire {

using Sha256 = std::array<std::byte, 32>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
Sha256 hmac_sha256(std::span<const std::byte> key, std::span<const std::span<const std::byte>> parts);

/// Constant-time equality of two byte strings of the same length.
bool equal_secret(std::span<const std::byte> a, std::span<const std::byte> b);

}  // namespace ipc::wire
