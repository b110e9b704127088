// The TLS module (libipc-tls.so): OpenSSL behind a plain function table, loaded by a
// rank only when its job runs over TLS (IPC_TLS; tls.hpp).
//
// Why a module: a program linked with libssl and libcrypto loads them at every start,
// TLS or not: 0.9 ms of a process's start-up here (a program doing nothing: 1.1
// against 2.0 ms), about 2 MiB more resident, in every rank of every job. The table
// speaks no OpenSSL type (contexts and streams travel as opaque pointers), so that the
// runtime compiles without OpenSSL's headers and links without its libraries.
#pragma once

#include <cstddef>

namespace ipc::transport::tcp {

/// Bumped whenever the table changes: a module of another version is not used.
inline constexpr int kTlsAbi = 1;

struct TlsCalls {
  int abi;
  /// A context from PEM text (this side's certificate chain, leaf first; its key; the
  /// CA certificates a peer's must chain to), TLS 1.3, both sides verified; or null,
  /// with why in `why` (NUL-terminated, at most `room` bytes).
  void* (*context_new)(const char* cert, std::size_t cert_len, const char* key, std::size_t key_len, const char* ca,
                       std::size_t ca_len, char* why, std::size_t room);
  void (*context_free)(void* ctx);
  /// A stream over non-blocking socket `fd` (not closed by it), as server or client; a
  /// failed one fails its handshake (error() says why); null only without memory.
  void* (*stream_new)(void* ctx, int fd, int server);
  void (*stream_free)(void* stream);
  /// 0: done; 1: again (wants_write() says for which event); 2: failed (error()).
  int (*handshake)(void* stream);
  /// As send(2) and recv(2) on a non-blocking socket: bytes moved, 0 from recv when the
  /// peer closed, or -1 with errno EAGAIN (would block) or EPROTO (error() says why).
  long (*send)(void* stream, const void* data, std::size_t n);
  long (*recv)(void* stream, void* data, std::size_t n);
  /// Decrypted bytes wait inside OpenSSL (epoll does not see them).
  int (*pending)(const void* stream);
  /// The last call that would block waits for the socket to be writable.
  int (*wants_write)(const void* stream);
  /// The last failure's text, "" when none (valid until the stream's next call).
  const char* (*error)(const void* stream);
};

}  // namespace ipc::transport::tcp

/// The module's entry: its table.
extern "C" const ipc::transport::tcp::TlsCalls* ipc_tls_module();
