#include "wire/hmac.hpp"

// SHA256_Init/Update/Final are marked deprecated in OpenSSL 3 in favour of EVP, whose
// first use costs more than a rank's start-up otherwise does (hmac.hpp).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

namespace ipc::wire {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256's block size

void update(SHA256_CTX& c, std::span<const std::byte> s) { SHA256_Update(&c, s.data(), s.size()); }

}  // namespace

Sha256 hmac_sha256(std::span<const std::byte> key, std::span<const std::span<const std::byte>> parts) {
  // K0: the key, hashed first when longer than a block, zero-padded to a block.
  std::array<unsigned char, kBlock> k{};
  if (key.size() > kBlock)
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), k.data());
  else if (!key.empty())
    std::memcpy(k.data(), key.data(), key.size());
  std::array<unsigned char, kBlock> pad;
  Sha256 inner, out;
  SHA256_CTX c;
  for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&c);
  SHA256_Update(&c, pad.data(), pad.size());
  for (auto p : parts) update(c, p);
  SHA256_Final(reinterpret_cast<unsigned char*>(inner.data()), &c);
  for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&c);
  SHA256_Update(&c, pad.data(), pad.size());
  update(c, inner);
  SHA256_Final(reinterpret_cast<unsigned char*>(out.data()), &c);
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(pad.data(), pad.size());
  return out;
}

bool equal_secret(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ipc::wire
