#include <poll.h>
#include <sys/socket.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "bootstrap/store.hpp"
#include "base/errors.hpp"
#include "base/net.hpp"
#include "wire/handshake.hpp"
#include "wire/kv_protocol.hpp"

namespace ipc::bootstrap {

using Clock = std::chrono::steady_clock;

struct TcpStore::Impl {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};
  std::string where;  // "ipcrun's bootstrap server at host:port"
  std::mutex mu;      // one request at a time on the connection
  std::vector<std::byte> inbuf;

  [[noreturn]] void lost(const std::string& what) { throw BootstrapError("bootstrap: " + what + " (" + where + ")"); }

  // Waits for `events` on the socket until `deadline` (none when max()).
  void await(short events, Clock::time_point deadline, const char* op) {
    for (;;) {
      int ms = -1;
      if (deadline != Clock::time_point::max()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) throw Timeout(std::string("bootstrap: timed out waiting to ") + op + " (" + where + ")");
        ms = static_cast<int>(std::min<long long>(left, 1000 * 1000));
      }
      pollfd p{sock.native_handle(), events, 0};
      int n = ::poll(&p, 1, ms);
      if (n > 0) return;
      if (n < 0 && errno != EINTR) lost(std::string("poll failed: ") + std::strerror(errno));
    }
  }

  void write_all(const void* data, std::size_t n) {
    auto* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::send(sock.native_handle(), p, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          await(POLLOUT, Clock::time_point::max(), "write");
          continue;
        }
        lost(std::string("write failed: ") + std::strerror(errno));
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  // Reads more bytes into inbuf.
  void read_some(Clock::time_point deadline, const char* op) {
    std::byte buf[65536];
    for (;;) {
      ssize_t r = ::recv(sock.native_handle(), buf, sizeof buf, 0);
      if (r > 0) {
        inbuf.insert(inbuf.end(), buf, buf + r);
        return;
      }
      if (r == 0) lost("the server closed the connection");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        await(POLLIN, deadline, op);
        continue;
      }
      lost(std::string("read failed: ") + std::strerror(errno));
    }
  }

  void read_exact(std::byte* out, std::size_t n, Clock::time_point deadline, const char* op) {
    while (inbuf.size() < n) read_some(deadline, op);
    std::memcpy(out, inbuf.data(), n);
    inbuf.erase(inbuf.begin(), inbuf.begin() + static_cast<std::ptrdiff_t>(n));
  }

  wire::KvMessage read_message(Clock::time_point deadline, const char* op) {
    for (;;) {
      wire::KvMessage m;
      std::size_t used = 0;
      std::string why;
      auto r = wire::decode(inbuf, wire::KvLimits{}, m, used, &why);
      if (r == wire::KvDecode::ok) {
        inbuf.erase(inbuf.begin(), inbuf.begin() + static_cast<std::ptrdiff_t>(used));
        if (m.op == wire::KvOp::error) lost("the server refused a request: " + (m.parts.empty() ? "" : m.parts[0]));
        return m;
      }
      if (r == wire::KvDecode::malformed) lost("malformed reply: " + why);
      read_some(deadline, op);
    }
  }

  void send(const wire::KvMessage& m) {
    auto bytes = wire::encode(m);
    write_all(bytes.data(), bytes.size());
  }
};

TcpStore::TcpStore(const std::string& host_port, const wire::Secret& secret, int rank,
                   std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  auto& im = *impl_;
  im.where = "ipcrun's bootstrap server at " + host_port;
  auto hp = net::parse_host_port(host_port, "IPC_BOOTSTRAP");
  asio::error_code ec;
  auto addr = asio::ip::make_address(hp.host, ec);
  if (ec) throw BootstrapError("bootstrap: IPC_BOOTSTRAP='" + host_port + "' does not name an IP address");
  asio::ip::tcp::endpoint ep(addr, hp.port);
  auto deadline = Clock::now() + timeout;
  im.sock.open(ep.protocol(), ec);
  if (!ec) im.sock.non_blocking(true, ec);
  if (ec) im.lost("cannot open a socket: " + ec.message());
  if (::connect(im.sock.native_handle(), ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
    if (errno != EINPROGRESS) im.lost(std::string("cannot connect: ") + std::strerror(errno));
    im.await(POLLOUT, deadline, "connect");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(im.sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) im.lost(std::string("cannot connect: ") + std::strerror(err));
  }
  im.sock.set_option(asio::ip::tcp::no_delay(true), ec);

  wire::ClientHandshake hs(secret, wire::Role::bootstrap, rank);
  auto hello = hs.hello();
  im.write_all(hello.data(), hello.size());
  std::array<std::byte, wire::kServerHelloSize> reply;
  im.read_exact(reply.data(), reply.size(), deadline, "authenticate");
  auto e = hs.on_server_hello(reply);
  if (e != wire::HandshakeError::ok) im.lost("the server failed authentication: " + wire::to_string(e));
  auto proof = hs.proof();
  im.write_all(proof.data(), proof.size());
}

TcpStore::~TcpStore() = default;

void TcpStore::put(const std::string& key, const std::string& value) {
  std::lock_guard lk(impl_->mu);
  impl_->send({wire::KvOp::put, {key, value}});
}

std::string TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::lock_guard lk(impl_->mu);
  impl_->send({wire::KvOp::get, {key}});
  auto m = impl_->read_message(Clock::now() + timeout, ("get '" + key + "'").c_str());
  if (m.op != wire::KvOp::value || m.parts.size() != 1) impl_->lost("unexpected reply to get");
  return m.parts[0];
}

KeyValues TcpStore::fence(std::chrono::milliseconds timeout) {
  std::lock_guard lk(impl_->mu);
  impl_->send({wire::KvOp::fence, {}});
  auto deadline = timeout == std::chrono::milliseconds::max() ? Clock::time_point::max() : Clock::now() + timeout;
  auto m = impl_->read_message(deadline, "fence with the other ranks");
  if (m.op != wire::KvOp::fenced || m.parts.size() % 2 != 0) impl_->lost("unexpected reply to fence");
  KeyValues kv;
  for (std::size_t i = 0; i + 1 < m.parts.size(); i += 2) kv[m.parts[i]] = m.parts[i + 1];
  return kv;
}

void TcpStore::report(const std::string& line) {
  std::lock_guard lk(impl_->mu);
  impl_->send({wire::KvOp::report, {line}});
}

}  // namespace ipc::bootstrap
