// The handshake's messages, as a stranger might send them: nothing but a valid MAC
// may ever be accepted.
#include <cstring>
#include <span>

#include "fuzz.hpp"
#include "wire/handshake.hpp"

using namespace ipc::wire;

namespace {
const Secret& secret() {
  static Secret s = make_secret();
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  ServerHandshake server(secret());
  if (size >= kClientHelloSize && server.on_client_hello(bytes.first<kClientHelloSize>()) == HandshakeError::ok) {
    if (size >= kClientHelloSize + kClientProofSize &&
        server.on_client_proof(bytes.subspan(kClientHelloSize).first<kClientProofSize>()) == HandshakeError::ok)
      __builtin_trap();  // a forged proof (random nonce per server: never guessable)
  }
  ClientHandshake client(secret(), Role::peer, 1);
  if (size >= kServerHelloSize && client.on_server_hello(bytes.first<kServerHelloSize>()) == HandshakeError::ok)
    __builtin_trap();  // the server's MAC covers the client's fresh nonce
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  ClientHandshake c(secret(), Role::peer, 3);
  ServerHandshake s(secret());
  auto hello = c.hello();
  (void)s.on_client_hello(std::span<const std::byte, kClientHelloSize>(hello.data(), kClientHelloSize));
  std::vector<std::uint8_t> a(reinterpret_cast<const std::uint8_t*>(hello.data()),
                              reinterpret_cast<const std::uint8_t*>(hello.data()) + hello.size());
  a.resize(kClientHelloSize + kClientProofSize);
  auto reply = s.reply();
  std::vector<std::uint8_t> b(reinterpret_cast<const std::uint8_t*>(reply.data()),
                              reinterpret_cast<const std::uint8_t*>(reply.data()) + reply.size());
  return {a, b};
}
