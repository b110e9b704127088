#include "transport/tcp/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <cstdlib>

#include "base/errors.hpp"
#include "base/params.hpp"

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

}  // namespace

TlsContext::TlsContext(const std::string& cert_pem, const std::string& key_pem, const std::string& ca_pem) {
  ctx_ = SSL_CTX_new(TLS_method());
  if (!ctx_) throw Error("TLS: cannot make a context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
  // send() may hand over less than it was given (as a socket does), with the rest
  // given again from a queue whose storage moves.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Reads take whatever the socket holds, several records per recv(), instead of a
  // record's 5-byte header and then its body (two system calls per 16 KiB record).
  SSL_CTX_set_read_ahead(ctx_, 1);
  SSL_CTX_set_default_read_buffer_len(ctx_, 64 * 1024);
  // AES-128-GCM first: as safe for a job's traffic and about a third cheaper than
  // AES-256 (ChaCha20 stays for CPUs without AES instructions).
  SSL_CTX_set_ciphersuites(ctx_, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
  auto load = [&](const std::string& pem, const char* what, auto&& use) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    bool ok = b && use(b);
    BIO_free(b);
    if (!ok) {
      SSL_CTX_free(ctx_);
      ctx_ = nullptr;
      throw Error(std::string("TLS: ") + what + " does not load: " + openssl_error());
    }
  };
  load(cert_pem, "the certificate (IPC_TLS_CERT)", [&](BIO* b) {
    X509* leaf = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    if (!leaf || SSL_CTX_use_certificate(ctx_, leaf) != 1) {
      X509_free(leaf);
      return false;
    }
    X509_free(leaf);
    while (X509* more = PEM_read_bio_X509(b, nullptr, nullptr, nullptr))  // the rest of a chain
      if (SSL_CTX_add1_chain_cert(ctx_, more) != 1 || (X509_free(more), false)) return false;
    ERR_clear_error();  // the end of the chain reads as an error
    return true;
  });
  load(key_pem, "the key (IPC_TLS_KEY)", [&](BIO* b) {
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    bool ok = k && SSL_CTX_use_PrivateKey(ctx_, k) == 1 && SSL_CTX_check_private_key(ctx_) == 1;
    EVP_PKEY_free(k);
    return ok;
  });
  load(ca_pem, "the CA (IPC_TLS_CA)", [&](BIO* b) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
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
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<TlsContext> TlsContext::from_params() {
  if (!base::param_bool("IPC_TLS")) return nullptr;
  auto get = [](const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v)
      throw Error(std::string("TLS: IPC_TLS is on but ") + name +
                  " is empty (ipcrun --tls sets it; a rank started otherwise needs IPC_TLS_CERT, IPC_TLS_KEY and "
                  "IPC_TLS_CA in PEM)");
    return std::string(v);
  };
  return std::make_shared<TlsContext>(get("IPC_TLS_CERT"), get("IPC_TLS_KEY"), get("IPC_TLS_CA"));
}

TlsStream::TlsStream(const TlsContext& ctx, int fd, bool server) {
  ssl_ = SSL_new(ctx.get());
  BIO* bio = ssl_ ? BIO_new(socket_method()) : nullptr;
  if (!bio) {
    error_ = "TLS: cannot set up a connection: " + openssl_error();
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl_, bio, bio);
  if (server)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream::Step TlsStream::handshake() {
  if (!ssl_) return Step::failed;
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return Step::done;
  ssize_t n = result(r, "TLS handshake");
  if (n < 0 && errno == EAGAIN) return Step::again;
  if (n == 0 && error_.empty()) error_ = "TLS handshake: the peer closed the connection";
  return Step::failed;
}

ssize_t TlsStream::result(int ret, const char* what) {
  int e = SSL_get_error(ssl_, ret);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      want_write_ = false;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      want_write_ = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL: {
      int err = errno;
      std::string detail = ERR_peek_error() ? openssl_error() : err ? std::strerror(err) : "the peer closed the connection";
      if (err == 0 && !ERR_peek_error() && std::string(what) != "TLS handshake") return 0;  // EOF without close_notify
      error_ = std::string(what) + ": " + detail;
      errno = EPROTO;
      return -1;
    }
    default: {
      std::string detail = openssl_error();
      long v = SSL_get_verify_result(ssl_);
      if (v != X509_V_OK) detail += " (peer certificate: " + std::string(X509_verify_cert_error_string(v)) + ")";
      error_ = std::string(what) + ": " + detail;
      errno = EPROTO;
      return -1;
    }
  }
}

ssize_t TlsStream::send(const void* data, std::size_t n) {
  if (n == 0) return 0;
  int r = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  return r > 0 ? r : result(r, "TLS write");
}

ssize_t TlsStream::recv(void* data, std::size_t n) {
  int r = SSL_read(ssl_, data, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  return r > 0 ? r : result(r, "TLS read");
}

bool TlsStream::pending() const { return ssl_ && SSL_has_pending(ssl_) == 1; }

}  // namespace ipc::transport::tcp
