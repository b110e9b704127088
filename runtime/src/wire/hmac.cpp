#include "wire/hmac.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ipc::wire {
namespace {

constexpr std::size_t kBlock = 64;  // SHA-256's block size

// FIPS 180-4, section 4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes.
constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// SHA-256 (FIPS 180-4), incremental: what the handshakes' MACs need, nothing more.
class Sha256State {
 public:
  void update(const std::byte* p, std::size_t n) {
    length_ += n;
    if (used_) {
      std::size_t take = std::min(n, kBlock - used_);
      std::memcpy(block_ + used_, p, take);
      used_ += take;
      p += take;
      n -= take;
      if (used_ < kBlock) return;
      compress(block_);
      used_ = 0;
    }
    for (; n >= kBlock; p += kBlock, n -= kBlock) compress(p);
    std::memcpy(block_, p, n);
    used_ = n;
  }
  void update(std::span<const std::byte> s) { update(s.data(), s.size()); }

  Sha256 finish() {
    const std::uint64_t bits = length_ * 8;
    std::byte tail[kBlock * 2] = {};
    std::size_t n = used_ < kBlock - 8 ? kBlock : 2 * kBlock;  // room for 0x80 and the length
    std::memcpy(tail, block_, used_);
    tail[used_] = std::byte{0x80};
    for (int i = 0; i < 8; ++i) tail[n - 1 - i] = static_cast<std::byte>(bits >> (8 * i));
    compress(tail);
    if (n == 2 * kBlock) compress(tail + kBlock);
    Sha256 out;
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<std::byte>(h_[i] >> (24 - 8 * j));
    wipe(tail, sizeof tail);
    return out;
  }

  ~Sha256State() { wipe(block_, sizeof block_); }

  static void wipe(void* p, std::size_t n) {
    // A store the compiler must keep: key material does not outlive its use.
    volatile auto* v = static_cast<volatile unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) v[i] = 0;
  }

 private:
  void compress(const std::byte* p) {
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = std::to_integer<std::uint32_t>(p[4 * t]) << 24 | std::to_integer<std::uint32_t>(p[4 * t + 1]) << 16 |
             std::to_integer<std::uint32_t>(p[4 * t + 2]) << 8 | std::to_integer<std::uint32_t>(p[4 * t + 3]);
    for (int t = 16; t < 64; ++t) {
      std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int t = 0; t < 64; ++t) {
      std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[t] + w[t];
      std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
    wipe(w, sizeof w);
  }

  // FIPS 180-4, section 5.3.3: the first 32 bits of the fractional parts of the square
  // roots of the first 8 primes.
  std::uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::byte block_[kBlock] = {};
  std::size_t used_ = 0;
  std::uint64_t length_ = 0;
};

}  // namespace

Sha256 sha256(std::span<const std::byte> data) {
  Sha256State s;
  s.update(data);
  return s.finish();
}

Sha256 hmac_sha256(std::span<const std::byte> key, std::span<const std::span<const std::byte>> parts) {
  // K0: the key, hashed first when longer than a block, zero-padded to a block.
  std::byte k[kBlock] = {};
  if (key.size() > kBlock) {
    Sha256 hk = sha256(key);
    std::memcpy(k, hk.data(), hk.size());
    Sha256State::wipe(hk.data(), hk.size());
  } else if (!key.empty()) {
    std::memcpy(k, key.data(), key.size());
  }
  std::byte pad[kBlock];
  for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ std::byte{0x36};
  Sha256State in;
  in.update(pad, kBlock);
  for (auto p : parts) in.update(p);
  Sha256 inner = in.finish();
  for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ std::byte{0x5c};
  Sha256State out;
  out.update(pad, kBlock);
  out.update(inner);
  Sha256State::wipe(k, sizeof k);
  Sha256State::wipe(pad, sizeof pad);
  return out.finish();
}

bool equal_secret(std::span<const std::byte> a, std::span<const std::byte> b) {
  if (a.size() != b.size()) return false;
  // Every byte looked at, whatever differs where: the time says nothing of the secret.
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = diff | std::to_integer<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace ipc::wire
