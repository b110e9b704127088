#include <gtest/gtest.h>

#include "wire/handshake.hpp"

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
