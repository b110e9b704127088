// TLS on the TCP transport (ipcrun --tls; IPC_TLS=1): OpenSSL on the connection's own
// non-blocking socket, below the job's authentication handshake. OpenSSL lives in the
// TLS module (tls_abi.hpp), loaded at the first context a process makes: a job without
// TLS never loads it.
//
// Both sides present a certificate and require the other's: it must chain to the CA
// the job trusts, which is the job's own self-signed certificate when ipcrun made one
// (every rank holds the same certificate and key) or the user's CA. The job's
// secret-based handshake then runs inside TLS as it does without it, so a peer must
// both hold a trusted certificate and know the secret. TLS 1.3 only.
//
// TlsStream behaves as send(2)/recv(2) on a non-blocking socket (bytes, or -1 with
// errno EAGAIN), so that the connection's code stays one path. Decrypted bytes may
// wait inside OpenSSL where epoll cannot see them: pending() tells, and the transport
// reads such connections on every poll and does not sleep while any has some.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

namespace ipc::transport::tcp {

struct TlsCalls;

class TlsContext {
 public:
  /// From PEM text: this side's certificate (a chain, leaf first), its private key,
  /// and the CA certificates a peer's certificate must chain to.
  /// @throws ipc::Error naming what does not load, or the TLS module that does not.
  TlsContext(const std::string& cert_pem, const std::string& key_pem, const std::string& ca_pem);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  void* handle() const { return ctx_; }
  /// From IPC_TLS_CERT, IPC_TLS_KEY and IPC_TLS_CA (PEM text, as ipcrun passes them);
  /// null unless IPC_TLS is on. @throws ipc::Error when IPC_TLS is on and they are not
  /// all there or do not load.
  static std::shared_ptr<TlsContext> from_params();

 private:
  const TlsCalls* calls_ = nullptr;
  void* ctx_ = nullptr;
};

class TlsStream {
 public:
  TlsStream(const TlsContext& ctx, int fd, bool server);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  enum class Step { done, again, failed };
  /// Advances the handshake: done, again (wants_write() says for which event), or
  /// failed (error() says why).
  Step handshake();
  /// As send(2) and recv(2) on a non-blocking socket: bytes moved, 0 from recv when the
  /// peer closed, or -1 with errno EAGAIN (would block) or EPROTO (error() says why).
  ssize_t send(const void* data, std::size_t n);
  ssize_t recv(void* data, std::size_t n);
  /// Decrypted bytes wait inside OpenSSL (epoll does not see them).
  bool pending() const;
  /// The last call that would block waits for the socket to be writable.
  bool wants_write() const;
  std::string error() const;

 private:
  const TlsCalls* calls_ = nullptr;
  void* s_ = nullptr;
};

}  // namespace ipc::transport::tcp
