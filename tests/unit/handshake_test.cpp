#include <gtest/gtest.h>

#include "wire/handshake.hpp"
#include "wire/hmac.hpp"
#include "wire/secret.hpp"

#include <string>
#include <vector>

using namespace ipc::wire;

namespace {

template <std::size_t N>
std::span<const std::byte, N> fixed(std::span<const std::byte> s) {
  return std::span<const std::byte, N>(s.data(), N);
}

}  // namespace

TEST(Handshake, SameSecretAuthenticatesBothWays) {
  Secret s = make_secret();
  ClientHandshake c(s, Role::peer, 5);
  ServerHandshake srv(s);
  ASSERT_EQ(srv.on_client_hello(fixed<kClientHelloSize>(c.hello())), HandshakeError::ok);
  ASSERT_EQ(c.on_server_hello(fixed<kServerHelloSize>(srv.reply())), HandshakeError::ok);
  EXPECT_EQ(srv.on_client_proof(fixed<kClientProofSize>(c.proof())), HandshakeError::ok);
  EXPECT_EQ(srv.rank(), 5);
  EXPECT_EQ(srv.role(), Role::peer);
}

TEST(Handshake, WrongSecretFailsOnBothSides) {
  Secret a = make_secret(), b = make_secret();
  // A client with the wrong secret: it rejects the server's MAC...
  ClientHandshake c(b, Role::bootstrap, 0);
  ServerHandshake srv(a);
  ASSERT_EQ(srv.on_client_hello(fixed<kClientHelloSize>(c.hello())), HandshakeError::ok);
  EXPECT_EQ(c.on_server_hello(fixed<kServerHelloSize>(srv.reply())), HandshakeError::bad_mac);
  // ...and a server with the wrong secret rejects the client's proof even when the
  // client went on regardless (the proof is made with the client's own secret).
  ClientHandshake honest(a, Role::peer, 1);
  ServerHandshake other(b);
  ASSERT_EQ(other.on_client_hello(fixed<kClientHelloSize>(honest.hello())), HandshakeError::ok);
  ServerHandshake real(a);
  ASSERT_EQ(real.on_client_hello(fixed<kClientHelloSize>(honest.hello())), HandshakeError::ok);
  ASSERT_EQ(honest.on_server_hello(fixed<kServerHelloSize>(real.reply())), HandshakeError::ok);
  EXPECT_EQ(other.on_client_proof(fixed<kClientProofSize>(honest.proof())), HandshakeError::bad_mac);
}

TEST(Handshake, ProofIsBoundToTheConnection) {
  Secret s = make_secret();
  ClientHandshake c(s, Role::peer, 2);
  ServerHandshake s1(s), s2(s);
  ASSERT_EQ(s1.on_client_hello(fixed<kClientHelloSize>(c.hello())), HandshakeError::ok);
  ASSERT_EQ(s2.on_client_hello(fixed<kClientHelloSize>(c.hello())), HandshakeError::ok);
  ASSERT_EQ(c.on_server_hello(fixed<kServerHelloSize>(s1.reply())), HandshakeError::ok);
  // A proof recorded on one connection does not open another (fresh server nonce).
  EXPECT_EQ(s2.on_client_proof(fixed<kClientProofSize>(c.proof())), HandshakeError::bad_mac);
}

TEST(Handshake, GarbageBytesAreRejected) {
  Secret s = make_secret();
  std::array<std::byte, kClientHelloSize> junk{};
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::byte>(i * 37 + 11);
  ServerHandshake srv(s);
  EXPECT_EQ(srv.on_client_hello(junk), HandshakeError::bad_magic);

  ClientHandshake good(s, Role::peer, 0);
  auto hello = std::vector<std::byte>(good.hello().begin(), good.hello().end());
  hello[4] = std::byte{9};  // version
  EXPECT_EQ(srv.on_client_hello(fixed<kClientHelloSize>(hello)), HandshakeError::bad_version);
  hello = std::vector<std::byte>(good.hello().begin(), good.hello().end());
  hello[6] = std::byte{77};  // role
  EXPECT_EQ(srv.on_client_hello(fixed<kClientHelloSize>(hello)), HandshakeError::bad_role);

  std::array<std::byte, kServerHelloSize> junk_reply{};
  EXPECT_EQ(good.on_server_hello(junk_reply), HandshakeError::bad_magic);
  ServerHandshake real(s);
  ASSERT_EQ(real.on_client_hello(fixed<kClientHelloSize>(good.hello())), HandshakeError::ok);
  auto reply = std::vector<std::byte>(real.reply().begin(), real.reply().end());
  reply[40] ^= std::byte{1};  // flip a bit of the MAC
  EXPECT_EQ(good.on_server_hello(fixed<kServerHelloSize>(reply)), HandshakeError::bad_mac);
  std::array<std::byte, kClientProofSize> junk_proof{};
  EXPECT_EQ(real.on_client_proof(junk_proof), HandshakeError::bad_mac);
}

TEST(Secret, HexRoundTrip) {
  Secret s = make_secret();
  auto parsed = secret_from_hex(to_hex(s));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, s);
  EXPECT_FALSE(secret_from_hex("abc"));
  EXPECT_FALSE(secret_from_hex(std::string(64, 'g')));
}

namespace {

std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) v[i] = static_cast<std::byte>(s[i]);
  return v;
}

std::string hex(std::span<const std::byte> b) { return to_hex(b.data(), b.size()); }

std::string hmac_hex(const std::vector<std::byte>& key, const std::vector<std::byte>& msg) {
  const std::span<const std::byte> parts[] = {msg};
  return hex(hmac_sha256(key, parts));
}

}  // namespace

// RFC 4231, test cases 1, 2, 3, 6 and 7: keys shorter than, equal to and longer than
// SHA-256's block, messages shorter and longer than one.
TEST(HmacSha256, Rfc4231Vectors) {
  EXPECT_EQ(hmac_hex(std::vector<std::byte>(20, std::byte{0x0b}), bytes("Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmac_hex(bytes("Jefe"), bytes("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_hex(std::vector<std::byte>(20, std::byte{0xaa}), std::vector<std::byte>(50, std::byte{0xdd})),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(hmac_hex(std::vector<std::byte>(131, std::byte{0xaa}),
                     bytes("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hmac_hex(std::vector<std::byte>(131, std::byte{0xaa}),
                     bytes("This is a test using a larger than block-size key and a larger than block-size data. "
                           "The key needs to be hashed before being used by the HMAC algorithm.")),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// FIPS 180-4's examples (NIST's SHA-256 vectors): empty, one block, two blocks, and
// a million bytes fed in one piece.
TEST(Sha256, NistVectors) {
  EXPECT_EQ(hex(sha256(bytes(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256(bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(sha256(std::vector<std::byte>(1000000, std::byte{'a'}))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Around the padding's edges (55, 56, 63, 64, 65 bytes: the length word fits the last
// block or needs another), the MAC's parts split anywhere give the digest of the whole.
TEST(Sha256, PaddingEdgesAndSplitsAgree) {
  for (std::size_t n : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u}) {
    std::vector<std::byte> msg(n);
    for (std::size_t i = 0; i < n; ++i) msg[i] = static_cast<std::byte>(i * 7 + 1);
    auto key = bytes("k");
    std::string whole = hmac_hex(key, msg);
    for (std::size_t cut = 0; cut <= n; cut += 13) {
      const std::span<const std::byte> two[] = {std::span(msg).first(cut), std::span(msg).subspan(cut)};
      EXPECT_EQ(hex(hmac_sha256(key, two)), whole) << n << " cut at " << cut;
    }
  }
  // 56 bytes: the length no longer fits the first block (two-block padding).
  EXPECT_EQ(hex(sha256(bytes(std::string(56, 'a')))), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(hex(sha256(bytes(std::string(64, 'a')))), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(hex(sha256(bytes(std::string(55, 'a')))), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(hex(sha256(bytes(std::string(63, 'a')))), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(hex(sha256(bytes(std::string(65, 'a')))), "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
  EXPECT_EQ(hex(sha256(bytes(std::string(119, 'a')))), "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  EXPECT_EQ(hex(sha256(bytes(std::string(120, 'a')))), "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
}

TEST(HmacSha256, PartsAreConcatenated) {
  auto key = bytes("key");
  auto a = bytes("hello, "), b = bytes("world");
  const std::span<const std::byte> two[] = {a, b};
  EXPECT_EQ(hex(hmac_sha256(key, two)), hmac_hex(key, bytes("hello, world")));
  EXPECT_NE(hex(hmac_sha256(bytes("kex"), two)), hmac_hex(key, bytes("hello, world")));
}

TEST(Secret, RandomBytesDiffer) {
  Secret a = make_secret(), b = make_secret();
  EXPECT_NE(a, b);
  EXPECT_NE(a, Secret{});
}
