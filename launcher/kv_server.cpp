#include "kv_server.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <deque>
#include <map>
#include <sstream>
#include <vector>

#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "wire/handshake.hpp"

namespace ipc::launcher {

using asio::ip::tcp;
using Bytes = std::shared_ptr<const std::vector<std::byte>>;

namespace {

void write_stderr(const std::string& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

Bytes encode_shared(const wire::KvMessage& m) {
  return std::make_shared<const std::vector<std::byte>>(wire::encode(m));
}

class Session;

}  // namespace

struct KvServer::State {
  State(asio::io_context& io, const wire::Secret& s, int n, Hooks h)
      : acceptor(io), retry(io), secret(s), job_size(n), hooks(std::move(h)) {}

  tcp::acceptor acceptor;
  tcp::endpoint bound;       // the address listened on, port included
  asio::steady_timer retry;  // pause after a failed accept (out of descriptors)
  wire::Secret secret;
  int job_size;
  Hooks hooks;
  bool stopped = false;
  std::unique_ptr<KvRoot> root;  // when there is no upstream: the store itself

  std::map<std::string, std::vector<std::weak_ptr<Session>>> gets;  // held until the value comes
  std::vector<std::weak_ptr<Session>> fence_waiters;                 // current generation
  std::uint64_t fences = 0;

  std::vector<std::weak_ptr<Session>> sessions;

  void accept(const std::shared_ptr<State>& self);
  void put(std::string key, std::string value);
  void get(const std::shared_ptr<Session>& who, const std::string& key);
  void fence(const std::shared_ptr<Session>& who, int rank);
  void report(int rank, std::string line);
  void deliver_value(const std::string& key, const std::string& value);
  void deliver_fenced(const KvRoot::Pairs& pairs);
  void stop();
};

namespace {

/// One client connection: handshake, then requests, replies through a queue
/// with one write in flight.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<KvServer::State> state)
      : socket_(std::move(socket)), deadline_(socket_.get_executor()), state_(std::move(state)),
        handshake_(state_->secret) {
    asio::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? std::string("an unknown address") : endpoint_text(ep);
    socket_.set_option(tcp::no_delay(true), ec);
  }

  void start() {
    auto self = shared_from_this();
    deadline_.expires_after(state_->hooks.handshake_timeout);
    deadline_.async_wait([self](asio::error_code ec) {
      if (!ec && !self->trusted_) {
        std::ostringstream limit;
        limit << std::chrono::duration<double>(self->state_->hooks.handshake_timeout).count();
        self->reject("no handshake within " + limit.str() + " s");
      }
    });
    asio::async_read(socket_, asio::buffer(hello_), [self](asio::error_code ec, std::size_t) {
      if (ec) return self->reject_on(ec);
      auto result = self->handshake_.on_client_hello(self->hello_);
      if (result != wire::HandshakeError::ok) return self->reject(wire::to_string(result));
      auto reply = self->handshake_.reply();
      asio::async_write(self->socket_, asio::buffer(reply.data(), reply.size()),
                        [self](asio::error_code ec, std::size_t) {
                          if (ec) return self->reject_on(ec);
                          self->read_proof();
                        });
    });
  }

  void send(const Bytes& bytes) {
    if (closed_) return;
    out_.push_back(bytes);
    if (out_.size() == 1) write_next();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    deadline_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void read_proof() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(proof_), [self](asio::error_code ec, std::size_t) {
      if (ec) return self->reject_on(ec);
      auto result = self->handshake_.on_client_proof(self->proof_);
      if (result != wire::HandshakeError::ok) return self->reject(wire::to_string(result));
      if (self->handshake_.role() != wire::Role::bootstrap)
        return self->reject("a peer of role " + std::to_string(static_cast<int>(self->handshake_.role())) +
                            " is not a bootstrap client");
      int rank = self->handshake_.rank();
      if (rank < 0 || rank >= self->state_->job_size)
        return self->reject("claims rank " + std::to_string(rank) + " of a job of " +
                            std::to_string(self->state_->job_size));
      self->trusted_ = true;
      self->deadline_.cancel();
      self->read_requests();
    });
  }

  void reject_on(const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;  // closed by us
    if (ec == asio::error::eof) return reject("closed during the handshake");
    reject(ec.message());
  }

  void reject(const std::string& why) {
    if (closed_) return;
    state_->hooks.log("rejected a bootstrap connection from " + peer_ + ": " + why);
    close();
  }

  void drop(const std::string& why) {
    if (closed_) return;
    state_->hooks.log("closing the bootstrap connection of rank " + std::to_string(handshake_.rank()) + " (" +
                      peer_ + "): " + why);
    close();
  }

  void read_requests() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](asio::error_code ec, std::size_t n) {
      if (ec) {
        self->close();  // the rank finished or died: normal
        return;
      }
      self->in_.insert(self->in_.end(), self->chunk_.begin(), self->chunk_.begin() + n);
      self->process();
      if (!self->closed_ && !self->closing_) self->read_requests();
    });
  }

  void process() {
    std::size_t begin = 0;
    while (!closed_ && !closing_) {
      wire::KvMessage m;
      std::size_t used = 0;
      std::string why;
      auto span = std::span<const std::byte>(in_).subspan(begin);
      auto r = wire::decode(span, state_->hooks.limits, m, used, &why);
      if (r == wire::KvDecode::need_more) break;
      if (r == wire::KvDecode::malformed) return drop("malformed message: " + why);
      begin += used;
      handle(std::move(m));
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(std::min(begin, in_.size())));
  }

  void handle(wire::KvMessage m) {
    auto& parts = m.parts;
    using wire::KvOp;
    if (m.op == KvOp::put && parts.size() == 2) {
      state_->put(std::move(parts[0]), std::move(parts[1]));
    } else if (m.op == KvOp::get && parts.size() == 1) {
      state_->get(shared_from_this(), parts[0]);
    } else if (m.op == KvOp::fence && parts.empty()) {
      state_->fence(shared_from_this(), handshake_.rank());
    } else if (m.op == KvOp::report && parts.size() == 1) {
      state_->report(handshake_.rank(), std::move(parts[0]));
    } else {
      state_->hooks.log("closing the bootstrap connection of rank " + std::to_string(handshake_.rank()) + " (" +
                        peer_ + "): unexpected request (op " + std::to_string(static_cast<int>(m.op)) + ", " +
                        std::to_string(parts.size()) + " parts)");
      send(encode_shared({KvOp::error, {"unexpected request"}}));
      closing_ = true;  // close once the reply is out
    }
  }

  void write_next() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(*out_.front()), [self](asio::error_code ec, std::size_t) {
      if (ec) {
        self->close();
        return;
      }
      self->out_.pop_front();
      if (!self->out_.empty())
        self->write_next();
      else if (self->closing_)
        self->close();
    });
  }

  tcp::socket socket_;
  asio::steady_timer deadline_;
  std::shared_ptr<KvServer::State> state_;
  wire::ServerHandshake handshake_;
  std::string peer_;
  std::array<std::byte, wire::kClientHelloSize> hello_{};
  std::array<std::byte, wire::kClientProofSize> proof_{};
  bool trusted_ = false;
  bool closing_ = false;  // an error reply is queued; close after it
  bool closed_ = false;
  std::vector<std::byte> in_;
  std::array<std::byte, 16 * 1024> chunk_{};
  std::deque<Bytes> out_;
};

}  // namespace

void KvServer::State::accept(const std::shared_ptr<State>& self) {
  acceptor.async_accept([self](asio::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (ec) {
      // Out of descriptors or similar: try again shortly rather than spin.
      self->retry.expires_after(std::chrono::milliseconds(100));
      self->retry.async_wait([self](asio::error_code ec) {
        if (!ec && !self->stopped) self->accept(self);
      });
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), self);
    std::erase_if(self->sessions, [](const auto& w) { return w.expired(); });
    self->sessions.push_back(session);
    session->start();
    self->accept(self);
  });
}

void KvServer::State::put(std::string key, std::string value) {
  if (root)
    root->put(std::move(key), std::move(value));
  else
    hooks.upstream.put(std::move(key), std::move(value));
}

void KvServer::State::get(const std::shared_ptr<Session>& who, const std::string& key) {
  auto& waiting = gets[key];
  waiting.push_back(who);
  if (waiting.size() > 1) return;  // asked already
  if (root)
    root->get(0, key);
  else
    hooks.upstream.get(key);
}

void KvServer::State::fence(const std::shared_ptr<Session>& who, int rank) {
  fence_waiters.push_back(who);
  if (root)
    root->fence(0, rank);
  else
    hooks.upstream.fence(rank);
}

void KvServer::State::report(int rank, std::string line) {
  if (root)
    root->report(rank, std::move(line));
  else
    hooks.upstream.report(rank, std::move(line));
}

void KvServer::State::deliver_value(const std::string& key, const std::string& value) {
  auto it = gets.find(key);
  if (it == gets.end()) return;
  auto waiting = std::move(it->second);
  gets.erase(it);
  auto reply = encode_shared({wire::KvOp::value, {value}});
  for (auto& w : waiting)
    if (auto s = w.lock()) s->send(reply);
}

void KvServer::State::deliver_fenced(const KvRoot::Pairs& pairs) {
  auto reply = std::make_shared<std::vector<std::byte>>();
  wire::encode_frame(static_cast<std::uint8_t>(wire::KvOp::fenced), *pairs, *reply);
  Bytes shared = reply;
  auto waiters = std::move(fence_waiters);
  fence_waiters.clear();
  ++fences;
  for (auto& w : waiters)
    if (auto s = w.lock()) s->send(shared);
}

void KvServer::State::stop() {
  if (stopped) return;
  stopped = true;
  asio::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (auto& w : sessions)
    if (auto s = w.lock()) s->close();
  sessions.clear();
  gets.clear();
  fence_waiters.clear();
  if (root) root->stop();
}

KvServer::KvServer(asio::io_context& io, const wire::Secret& secret, int job_size, const tcp::endpoint& listen,
                   Hooks hooks) {
  if (!hooks.report) hooks.report = [](const std::string& line) { write_stderr("[ipcrun] " + line + "\n"); };
  if (!hooks.log) hooks.log = [](const std::string& text) { write_stderr("ipcrun: " + text + "\n"); };
  state_ = std::make_shared<State>(io, secret, job_size, std::move(hooks));
  if (!state_->hooks.upstream.put) {
    std::weak_ptr<State> weak = state_;
    KvRoot::Sinks sinks;
    sinks.value = [weak](int, const std::string& key, const std::string& value) {
      if (auto s = weak.lock()) s->deliver_value(key, value);
    };
    sinks.fenced = [weak](int, const KvRoot::Pairs& pairs) {
      if (auto s = weak.lock()) s->deliver_fenced(pairs);
    };
    sinks.report = state_->hooks.report;
    state_->root = std::make_unique<KvRoot>(job_size, std::move(sinks));
  }
  state_->acceptor.open(listen.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(listen);
  state_->acceptor.listen();
  state_->bound = state_->acceptor.local_endpoint();
  state_->accept(state_);
}

KvServer::~KvServer() { stop(); }

std::uint16_t KvServer::port() const { return endpoint().port(); }

tcp::endpoint KvServer::endpoint() const { return state_->bound; }

std::uint64_t KvServer::fences_completed() const { return state_->fences; }

void KvServer::rank_gone(int rank) {
  if (state_->root) state_->root->rank_gone(rank);
}

void KvServer::deliver_value(const std::string& key, const std::string& value) { state_->deliver_value(key, value); }

void KvServer::deliver_fenced(const KvRoot::Pairs& pairs) { state_->deliver_fenced(pairs); }

void KvServer::stop() { state_->stop(); }

}  // namespace ipc::launcher
