// The TLS module (tls_abi.hpp): OpenSSL under the TCP transport's TLS streams. Built
// as libipc-tls.so, linked with libssl and libcrypto, loaded by tls.cpp when a job runs
// over TLS. Nothing thrown leaves it: failures come back as text.
#include "transport/tcp/tls_abi.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace ipc::transport::tcp {
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The socket under TLS: OpenSSL's own socket BIO writes with write(2), which raises
// SIGPIPE at a peer's reset; this one sends with MSG_NOSIGNAL, as the transport does.
int bio_write(BIO* b, const char* data, int n) {
  ssize_t w = ::send(static_cast<int>(BIO_get_fd(b, nullptr)), data, static_cast<std::size_t>(n), MSG_NOSIGNAL);
  BIO_clear_retry_flags(b);
  if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return static_cast<int>(w);
}

int bio_read(BIO* b, char* data, int n) {
  ssize_t r = ::recv(static_cast<int>(BIO_get_fd(b, nullptr)), data, static_cast<std::size_t>(n), 0);
  BIO_clear_retry_flags(b);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  return static_cast<int>(r);
}

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
  switch (cmd) {
    case BIO_C_SET_FD:
      BIO_set_data(b, reinterpret_cast<void*>(static_cast<std::intptr_t>(*static_cast<int*>(ptr))));
      BIO_set_init(b, 1);
      (void)num;
      return 1;
    case BIO_C_GET_FD: {
      int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b)));
      if (ptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "ipc socket");
    BIO_meth_set_write(bm, bio_write);
    BIO_meth_set_read(bm, bio_read);
    BIO_meth_set_ctrl(bm, bio_ctrl);
    return bm;
  }();
  return m;
}


void* context_new(const char* cert_text, std::size_t cert_len, const char* key_text, std::size_t key_len,
                  const char* ca_text, std::size_t ca_len, char* why, std::size_t room) {
  SSL_CTX* ctx = nullptr;
  try {
    const std::string cert_pem(cert_text, cert_len), key_pem(key_text, key_len), ca_pem(ca_text, ca_len);
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx) throw std::runtime_error("TLS: cannot make a context: " + openssl_error());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    // send() may hand over less than it was given (as a socket does), with the rest
    // given again from a queue whose storage moves.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Reads take whatever the socket holds, several records per recv(), instead of a
    // record's 5-byte header and then its body (two system calls per 16 KiB record).
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    // AES-128-GCM first: as safe for a job's traffic and about a third cheaper than
    // AES-256 (ChaCha20 stays for CPUs without AES instructions).
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    auto load = [&](const std::string& pem, const char* what, auto&& use) {
      BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      bool ok = b && use(b);
      BIO_free(b);
      if (!ok) {
        SSL_CTX_free(ctx);
        ctx = nullptr;
        throw std::runtime_error(std::string("TLS: ") + what + " does not load: " + openssl_error());
      }
    };
    load(cert_pem, "the certificate (IPC_TLS_CERT)", [&](BIO* b) {
      X509* leaf = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
      if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        X509_free(leaf);
        return false;
      }
      X509_free(leaf);
      while (X509* more = PEM_read_bio_X509(b, nullptr, nullptr, nullptr))  // the rest of a chain
        if (SSL_CTX_add1_chain_cert(ctx, more) != 1 || (X509_free(more), false)) return false;
      ERR_clear_error();  // the end of the chain reads as an error
      return true;
    });
    load(key_pem, "the key (IPC_TLS_KEY)", [&](BIO* b) {
      EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
      bool ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
      EVP_PKEY_free(k);
      return ok;
    });
    load(ca_pem, "the CA (IPC_TLS_CA)", [&](BIO* b) {
      X509_STORE* store = SSL_CTX_get_cert_store(ctx);
      int n = 0;
      while (X509* ca = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) {
        int ok = X509_STORE_add_cert(store, ca);
        X509_free(ca);
        if (ok != 1) return false;
        ++n;
      }
      ERR_clear_error();
      return n > 0;
    });
    // Both sides show a certificate and require the other's.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
  } catch (const std::exception& e) {
    if (room) {
      std::size_t n = std::min(room - 1, std::strlen(e.what()));
      std::memcpy(why, e.what(), n);
      why[n] = 0;
    }
    return nullptr;
  }
}

void context_free(void* ctx) { SSL_CTX_free(static_cast<SSL_CTX*>(ctx)); }

struct Stream {
  SSL* ssl = nullptr;
  bool want_write = false;
  std::string error;

  long result(int ret, const char* what) {
    int e = SSL_get_error(ssl, ret);
    switch (e) {
      case SSL_ERROR_WANT_READ:
        want_write = false;
        errno = EAGAIN;
        return -1;
      case SSL_ERROR_WANT_WRITE:
        want_write = true;
        errno = EAGAIN;
        return -1;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      case SSL_ERROR_SYSCALL: {
        int err = errno;
        std::string detail =
            ERR_peek_error() ? openssl_error() : err ? std::strerror(err) : "the peer closed the connection";
        if (err == 0 && !ERR_peek_error() && std::string(what) != "TLS handshake") return 0;  // EOF without close_notify
        error = std::string(what) + ": " + detail;
        errno = EPROTO;
        return -1;
      }
      default: {
        std::string detail = openssl_error();
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) detail += " (peer certificate: " + std::string(X509_verify_cert_error_string(v)) + ")";
        error = std::string(what) + ": " + detail;
        errno = EPROTO;
        return -1;
      }
    }
  }
};

void* stream_new(void* ctx, int fd, int server) {
  auto* s = new (std::nothrow) Stream;
  if (!s) return nullptr;
  s->ssl = SSL_new(static_cast<SSL_CTX*>(ctx));
  BIO* bio = s->ssl ? BIO_new(socket_method()) : nullptr;
  if (!bio) {
    s->error = "TLS: cannot set up a connection: " + openssl_error();
    SSL_free(s->ssl);
    s->ssl = nullptr;
    return s;
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(s->ssl, bio, bio);
  if (server)
    SSL_set_accept_state(s->ssl);
  else
    SSL_set_connect_state(s->ssl);
  return s;
}

void stream_free(void* stream) {
  auto* s = static_cast<Stream*>(stream);
  SSL_free(s->ssl);
  delete s;
}

int handshake(void* stream) {
  auto* s = static_cast<Stream*>(stream);
  if (!s->ssl) return 2;
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) return 0;
  long n = s->result(r, "TLS handshake");
  if (n < 0 && errno == EAGAIN) return 1;
  if (n == 0 && s->error.empty()) s->error = "TLS handshake: the peer closed the connection";
  return 2;
}

long send(void* stream, const void* data, std::size_t n) {
  auto* s = static_cast<Stream*>(stream);
  if (n == 0) return 0;
  int r = SSL_write(s->ssl, data, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  return r > 0 ? r : s->result(r, "TLS write");
}

long recv(void* stream, void* data, std::size_t n) {
  auto* s = static_cast<Stream*>(stream);
  int r = SSL_read(s->ssl, data, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  return r > 0 ? r : s->result(r, "TLS read");
}

int pending(const void* stream) {
  auto* s = static_cast<const Stream*>(stream);
  return s->ssl && SSL_has_pending(s->ssl) == 1;
}

int wants_write(const void* stream) { return static_cast<const Stream*>(stream)->want_write; }

const char* error(const void* stream) { return static_cast<const Stream*>(stream)->error.c_str(); }

constexpr TlsCalls kCalls{kTlsAbi, context_new, context_free, stream_new, stream_free, handshake, send,
                          recv,    pending,     wants_write,  error};

}  // namespace
}  // namespace ipc::transport::tcp

extern "C" __attribute__((visibility("default"))) const ipc::transport::tcp::TlsCalls* ipc_tls_module() {
  return &ipc::transport::tcp::kCalls;
}
