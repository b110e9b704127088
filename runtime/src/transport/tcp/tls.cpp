#include "transport/tcp/tls.hpp"

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "base/errors.hpp"
#include "base/module.hpp"
#include "base/params.hpp"
#include "transport/tcp/tls_abi.hpp"

namespace ipc::transport::tcp {
namespace {

// Where `cmake --install` puts the module under the prefix configured (a last resort:
// programs find it by name, through the run path the build gives them).
#ifndef IPC_TLS_INSTALLED
#define IPC_TLS_INSTALLED ""
#endif

// Loaded once per process, at its first context; a failed load is tried again next
// time (a program may catch the error and start another Runtime).
const TlsCalls& calls() {
  static std::mutex mu;
  static const TlsCalls* c = nullptr;
  std::lock_guard lk(mu);
  if (c) return *c;
  base::ModuleSpec spec{"libipc-tls.so", "ipc TLS module", base::param("IPC_TLS_MODULE"), IPC_TLS_INSTALLED,
                        "ipc_tls_module", RTLD_NOW | RTLD_LOCAL, kTlsAbi,
                        [](const void* t) { return static_cast<const TlsCalls*>(t)->abi; }};
  std::string tried;
  c = static_cast<const TlsCalls*>(base::load_module(spec, tried));
  if (!c)
    throw Error("TLS: the job runs over TLS, but the TLS module of ipc (OpenSSL) cannot be loaded; tried:" + tried +
                "\n(IPC_TLS_MODULE names the module's file: libipc-tls.so, in the build's lib/ or the installation's "
                "lib/ipc/; a program finds it through the run path it was linked with)");
  return *c;
}

}  // namespace

TlsContext::TlsContext(const std::string& cert_pem, const std::string& key_pem, const std::string& ca_pem)
    : calls_(&calls()) {
  char why[512] = {};
  ctx_ = calls_->context_new(cert_pem.data(), cert_pem.size(), key_pem.data(), key_pem.size(), ca_pem.data(),
                             ca_pem.size(), why, sizeof why);
  if (!ctx_) throw Error(why[0] ? why : "TLS: cannot make a context");
}

TlsContext::~TlsContext() {
  if (ctx_) calls_->context_free(ctx_);
}

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

TlsStream::TlsStream(const TlsContext& ctx, int fd, bool server)
    : calls_(&calls()), s_(calls_->stream_new(ctx.handle(), fd, server ? 1 : 0)) {}

TlsStream::~TlsStream() {
  if (s_) calls_->stream_free(s_);
}

TlsStream::Step TlsStream::handshake() {
  if (!s_) return Step::failed;
  switch (calls_->handshake(s_)) {
    case 0:
      return Step::done;
    case 1:
      return Step::again;
    default:
      return Step::failed;
  }
}

ssize_t TlsStream::send(const void* data, std::size_t n) {
  if (!s_) return errno = EPROTO, -1;
  return calls_->send(s_, data, n);
}

ssize_t TlsStream::recv(void* data, std::size_t n) {
  if (!s_) return errno = EPROTO, -1;
  return calls_->recv(s_, data, n);
}

bool TlsStream::pending() const { return s_ && calls_->pending(s_) != 0; }

bool TlsStream::wants_write() const { return s_ && calls_->wants_write(s_) != 0; }

std::string TlsStream::error() const { return s_ ? calls_->error(s_) : "TLS: no memory for a connection"; }

}  // namespace ipc::transport::tcp
