#include "transport/tcp/tcp_connection.hpp"

#include "base/copy.hpp"
#include "transport/queued.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ipc::transport::tcp {
namespace {

constexpr std::size_t kStaging = 64 * 1024;
// What an accepted connection reads into until it has authenticated: nothing large
// is allocated for a stranger.
constexpr std::size_t kHandshakeStaging = 512;
constexpr std::size_t kDirectRead = 16 * 1024;  // read payloads this large straight into place
constexpr int kMaxIov = 64;
constexpr std::size_t kSmallFrame = 1024;
// Payload bytes per sendmsg. On loopback the sender's CPU does the whole TCP path in
// its write, and a receiver that reads while the sender writes contends with it for
// the socket. Writes of 1 MiB: 1 MiB ping-pong 0.77 and 4 MiB 0.69 of the time with
// 256 KiB writes, window bandwidth of 1 MiB / 4 MiB 1.53 / 1.36 times (2 ranks on 2
// cores, kernel 6.18, medians of 6-8 alternating rounds; 64 and 256 KiB messages
// unchanged). (On an earlier kernel, 256 KiB writes had won: 120 against 195 us.)
constexpr std::size_t kMaxWrite = 1024 * 1024;  // payloads up to this leave in one contiguous write

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// The system calls themselves: libc's wrappers are cancellation points and switch
// asynchronous cancellation on and off around each call, which costs more than the
// rest of the user-space work of a small message (sockets here are non-blocking, so
// nothing is ever cancelled inside them).
ssize_t sys_send(int fd, const void* buf, std::size_t len) {
  return ::syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, nullptr, 0);
}
ssize_t sys_sendmsg(int fd, const msghdr* msg) { return ::syscall(SYS_sendmsg, fd, msg, MSG_NOSIGNAL); }
ssize_t sys_recv(int fd, void* buf, std::size_t len) {
  return ::syscall(SYS_recvfrom, fd, buf, len, 0, nullptr, nullptr);
}

}  // namespace

Connection::Connection(asio::ip::tcp::socket s, State st, int peer, const wire::Secret& secret)
    : state_(st), peer_(peer), in_(st == State::wait_hello ? kHandshakeStaging : kStaging) {
  asio::error_code ec;
  fd_ = s.is_open() ? s.release(ec) : -1;
  if (ec) fd_ = -1;
  if (st == State::wait_hello) server_.emplace(secret);
}

std::unique_ptr<Connection> Connection::outgoing(asio::ip::tcp::socket s, int peer, const wire::Secret& secret,
                                                 int my_rank, const TlsContext* tls) {
  std::unique_ptr<Connection> c(new Connection(std::move(s), State::connecting, peer, secret));
  if (tls) c->tls_ = std::make_unique<TlsStream>(*tls, c->fd_, false);
  c->client_.emplace(secret, wire::Role::peer, my_rank);
  c->outgoing_ = true;
  c->my_rank_ = my_rank;
  return c;
}

std::unique_ptr<Connection> Connection::incoming(asio::ip::tcp::socket s, const wire::Secret& secret, int job_size,
                                                 std::function<bool(Connection&, int)> on_hello,
                                                 std::function<void(Connection&)> on_open, const TlsContext* tls) {
  std::unique_ptr<Connection> c(new Connection(std::move(s), State::wait_hello, -1, secret));
  if (tls) {
    c->tls_ = std::make_unique<TlsStream>(*tls, c->fd_, true);
    c->after_tls_ = State::wait_hello;
    c->state_ = State::tls;
  }
  c->accepted_at_ = std::chrono::steady_clock::now();
  c->remote_ = c->remote();  // now: a peer that resets is no longer named by the socket
  c->job_size_ = job_size;
  c->on_hello_ = std::move(on_hello);
  c->on_open_ = std::move(on_open);
  return c;
}

Connection::Unsent Connection::Unsent::of(const wire::Frame& f, Completion* done) {
  Unsent u;
  wire::encode_prefix(f.head.size(), f.length, std::span<std::byte, wire::kStreamPrefix>(u.head.data(), wire::kStreamPrefix));
  std::memcpy(u.head.data() + wire::kStreamPrefix, f.head.data(), f.head.size());
  u.head_len = wire::kStreamPrefix + f.head.size();
  u.payload = static_cast<const std::byte*>(f.payload);
  u.length = static_cast<std::size_t>(f.length);
  u.done = done;
  return u;
}

std::vector<Connection::Unsent> Connection::take_unsent() {
  std::vector<Unsent> out;
  for (auto& o : outq_) out.push_back(std::move(static_cast<Unsent&>(o)));
  outq_.clear();
  return out;
}

Connection::~Connection() { close(); }

std::string Connection::remote() const {
  if (!remote_.empty()) return remote_;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd_ < 0 || ::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "an unknown address";
  asio::ip::tcp::endpoint ep;
  if (len > ep.capacity()) return "an unknown address";
  std::memcpy(ep.data(), &ss, len);
  ep.resize(len);
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void Connection::set_no_delay() {
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void Connection::fail(const std::string& why) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  error_ = why;
  auto q = std::move(outq_);
  outq_.clear();
  for (auto& o : q)
    if (o.done) o.done->complete(std::make_error_code(std::errc::connection_aborted));
}

void Connection::close() {
  if (fd_ < 0) return;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
}

void Connection::send(const wire::Frame& f, Completion* done, std::size_t copy_limit) {
  if (state_ == State::closed) {
    if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
    return;
  }
  if (outq_.empty() && open() && hs_out_.empty() && f.length <= kSmallFrame) {
    // Fast path: a small frame leaves in one contiguous write, without the queue.
    std::byte buf[wire::kStreamPrefix + wire::kMaxHead + kSmallFrame];
    wire::encode_prefix(f.head.size(), f.length, std::span<std::byte, wire::kStreamPrefix>(buf, wire::kStreamPrefix));
    base::copy_small(buf + wire::kStreamPrefix, f.head.data(), f.head.size());
    std::size_t at = wire::kStreamPrefix + f.head.size();
    if (f.length <= 16)
      base::copy_small(buf + at, f.payload, f.length);
    else
      base::copy_bytes(buf + at, f.payload, f.length);
    std::size_t total = at + f.length;
    ssize_t n;
    do {
      n = out_send(buf, total);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(total)) {
      if (done) done->complete({});
      return;
    }
    if (n < 0 && !would_block(errno)) {
      fail(write_error());
      if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
      return;
    }
    // Partly written: queue the rest (its bytes already sent are counted).
    enqueue(Unsent::of(f, done), n > 0 ? static_cast<std::size_t>(n) : 0, copy_limit);
    return;
  }
  enqueue(Unsent::of(f, done), 0, copy_limit);
}

void Connection::send(Unsent u, std::size_t copy_limit) {
  if (state_ == State::closed) {
    if (u.done) u.done->complete(std::make_error_code(std::errc::connection_aborted));
    return;
  }
  enqueue(std::move(u), 0, copy_limit);
}

void Connection::enqueue(Unsent u, std::size_t sent, std::size_t copy_limit) {
  bool first = outq_.empty();
  Out o;
  static_cast<Unsent&>(o) = std::move(u);
  o.sent = sent;
  outq_.push_back(std::move(o));
  if (first && open() && hs_out_.empty()) flush();
  if (outq_.empty()) return;
  // Whatever is still queued: small payloads are copied so that the sender may go on.
  Out& last = outq_.back();
  if (last.done && last.length <= copy_limit && !last.owned) detach_payload(last);
}

bool Connection::write_handshake() {
  while (!hs_out_.empty()) {
    ssize_t n = out_send(hs_out_.data(), hs_out_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return false;
      fail(write_error());
      return false;
    }
    hs_out_.erase(hs_out_.begin(), hs_out_.begin() + n);
  }
  return true;
}

void Connection::flush() {
  if (!write_handshake() || !open()) return;
  while (!outq_.empty()) {
    iovec iov[kMaxIov];
    int cnt = 0;
    for (auto it = outq_.begin(); it != outq_.end() && cnt + 2 <= kMaxIov; ++it) {
      std::size_t off = it->sent;
      if (off < it->head_len) {
        iov[cnt++] = {it->head.data() + off, it->head_len - off};
        off = it->head_len;
      }
      std::size_t poff = off - it->head_len;
      if (poff < it->length) {
        std::size_t n = std::min(it->length - poff, kMaxWrite);
        iov[cnt++] = {const_cast<std::byte*>(it->payload) + poff, n};
        if (n < it->length - poff) break;  // the rest of this frame in the next write
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(cnt);
    ssize_t n = out_sendmsg(&msg);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return;
      fail(write_error());
      return;
    }
    auto left = static_cast<std::size_t>(n);
    while (left > 0 || (!outq_.empty() && outq_.front().sent == outq_.front().total())) {
      Out& o = outq_.front();
      std::size_t take = std::min(left, o.total() - o.sent);
      o.sent += take;
      left -= take;
      if (o.sent < o.total()) break;
      Completion* c = o.done;
      outq_.pop_front();
      if (c) c->complete({});
      if (outq_.empty()) break;
    }
  }
}

void Connection::on_writable() {
  if (state_ == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      fail(std::string("connect failed: ") + std::strerror(err));
      return;
    }
    set_no_delay();
    if (tls_) {
      state_ = State::tls;
      after_tls_ = State::hello_sent;
      tls_step();
      return;
    }
    auto hello = client_->hello();
    hs_out_.assign(hello.begin(), hello.end());
    state_ = State::hello_sent;
  }
  if (state_ == State::tls) {
    tls_step();
    return;
  }
  flush();
}

bool Connection::handshake_step() {
  std::size_t have = wr_ - rd_;
  const std::byte* p = in_.data() + rd_;
  switch (state_) {
    case State::hello_sent: {
      if (have < wire::kServerHelloSize) return false;
      auto e = client_->on_server_hello(std::span<const std::byte, wire::kServerHelloSize>(p, wire::kServerHelloSize));
      rd_ += wire::kServerHelloSize;
      if (e == wire::HandshakeError::redirected && peer_ > my_rank_) {
        fail("rank " + std::to_string(peer_) + " redirected a connection it may not");  // only a lower rank may
        return false;
      }
      if (e == wire::HandshakeError::redirected) {
        redirected_ = true;  // the queued frames go to the peer's connection
        close_quietly();
        return false;
      }
      if (e != wire::HandshakeError::ok) {
        fail("handshake with rank " + std::to_string(peer_) + " failed: " + wire::to_string(e));
        return false;
      }
      auto proof = client_->proof();
      hs_out_.insert(hs_out_.end(), proof.begin(), proof.end());
      state_ = State::open;
      client_.reset();
      flush();
      return true;
    }
    case State::wait_hello: {
      if (have < wire::kClientHelloSize) return false;
      auto e = server_->on_client_hello(std::span<const std::byte, wire::kClientHelloSize>(p, wire::kClientHelloSize));
      rd_ += wire::kClientHelloSize;
      if (e == wire::HandshakeError::ok && server_->role() != wire::Role::peer) e = wire::HandshakeError::bad_role;
      if (e != wire::HandshakeError::ok) {
        fail(wire::to_string(e));
        return false;
      }
      if (server_->rank() < 0 || server_->rank() >= job_size_) {
        fail("a peer claims rank " + std::to_string(server_->rank()) + " outside the job");
        return false;
      }
      if (on_hello_ && !on_hello_(*this, server_->rank())) {
        auto r = wire::ServerHandshake::redirect();
        hs_out_.assign(r.begin(), r.end());
        write_handshake();
        close_quietly();
        return false;
      }
      auto reply = server_->reply();
      hs_out_.assign(reply.begin(), reply.end());
      state_ = State::wait_proof;
      write_handshake();
      return true;
    }
    case State::wait_proof: {
      if (have < wire::kClientProofSize) return false;
      auto e = server_->on_client_proof(std::span<const std::byte, wire::kClientProofSize>(p, wire::kClientProofSize));
      rd_ += wire::kClientProofSize;
      if (e != wire::HandshakeError::ok) {
        fail(wire::to_string(e));
        return false;
      }
      if (server_->rank() < 0 || server_->rank() >= job_size_) {
        fail("authenticated peer claims rank " + std::to_string(server_->rank()) + " outside the job");
        return false;
      }
      peer_ = server_->rank();
      server_.reset();
      state_ = State::open;
      in_.resize(kStaging);  // authenticated: now the full staging buffer
      if (on_open_) on_open_(*this);
      set_no_delay();
      return true;
    }
    default:
      return false;
  }
}

void Connection::finish_frame(Sink& sink) {
  in_frame_ = false;
  sink.on_frame_done(peer_, place_.token);
}

void Connection::process(Sink& sink, const wire::FrameLimits& limits) {
  while (state_ != State::closed) {
    if (state_ != State::open) {
      if (!handshake_step()) return;
      continue;
    }
    if (!in_frame_) {
      if (wr_ - rd_ < wire::kStreamPrefix) return;
      std::size_t head = 0;
      auto e = wire::decode_prefix(std::span<const std::byte, wire::kStreamPrefix>(in_.data() + rd_, wire::kStreamPrefix),
                                   limits, head, length_);
      if (e != wire::FrameError::ok) {
        fail("malformed frame from rank " + std::to_string(peer_) + ": " + wire::to_string(e));
        return;
      }
      if (wr_ - rd_ < wire::kStreamPrefix + head) return;
      place_ = sink.on_frame(peer_, {in_.data() + rd_ + wire::kStreamPrefix, head}, length_);
      if (const char* why = place_.error()) {
        fail("malformed frame from rank " + std::to_string(peer_) + ": " + why);
        return;
      }
      rd_ += wire::kStreamPrefix + head;
      in_frame_ = true;
      got_ = 0;
      if (length_ == 0) {
        finish_frame(sink);
        continue;
      }
    }
    std::size_t take = std::min<std::size_t>(length_ - got_, wr_ - rd_);
    if (take > 0) {
      if (place_.data) base::copy_bytes(static_cast<std::byte*>(place_.data) + got_, in_.data() + rd_, take);
      rd_ += take;
      got_ += take;
    }
    if (got_ < length_) return;
    finish_frame(sink);
  }
}

bool Connection::on_readable(Sink& sink, const wire::FrameLimits& limits, std::size_t max_bytes) {
  if (state_ == State::tls) {
    if (!tls_step()) return closed();
    if (state_ == State::hello_sent) return true;  // its hello is out; the answer comes later
  }
  std::size_t total = 0;
  while (state_ != State::closed && total < max_bytes) {
    if (rd_ == wr_) rd_ = wr_ = 0;
    ssize_t n;
    if (open() && in_frame_ && place_.data && rd_ == wr_ && length_ - got_ >= kDirectRead) {
      n = in_recv(static_cast<std::byte*>(place_.data) + got_, length_ - got_);
      if (n > 0) {
        got_ += static_cast<std::size_t>(n);
        total += static_cast<std::size_t>(n);
        if (got_ == length_) {
          finish_frame(sink);
          process(sink, limits);
        }
        continue;
      }
    } else {
      if (wr_ == in_.size()) {  // compact: keep the unread tail at the front
        std::memmove(in_.data(), in_.data() + rd_, wr_ - rd_);
        wr_ -= rd_;
        rd_ = 0;
      }
      std::size_t room = in_.size() - wr_;
      n = in_recv(in_.data() + wr_, room);
      if (n > 0) {
        wr_ += static_cast<std::size_t>(n);
        total += static_cast<std::size_t>(n);
        process(sink, limits);
        // A short read drained the socket: skip the recv that would say EAGAIN
        // (the next poll sees anything that arrives meanwhile). Not so with TLS: a
        // read returns one record at most.
        if (static_cast<std::size_t>(n) < room && !tls_) return true;
        continue;
      }
    }
    if (n == 0) {
      if (!open()) closed_in_handshake_ = true;  // a peer that gave up its connection, or a port scan
      fail(peer_ >= 0 ? "rank " + std::to_string(peer_) + " closed the connection" : "connection closed");
      return true;
    }
    if (errno == EINTR) continue;
    if (would_block(errno)) return total > 0;
    fail(errno == EPROTO && tls_ ? tls_->error() : std::string("read failed: ") + std::strerror(errno));
    return true;
  }
  return total > 0;
}

ssize_t Connection::out_send(const void* data, std::size_t n) {
  return tls_ ? tls_->send(data, n) : sys_send(fd(), data, n);
}

ssize_t Connection::out_sendmsg(const msghdr* msg) {
  if (!tls_) return sys_sendmsg(fd(), msg);
  // One record's worth at a time, gathered: TLS writes one buffer. A write that
  // would block is given again from the same point with at least the same bytes.
  constexpr std::size_t kGather = 64 * 1024;
  gather_.resize(kGather);
  std::size_t at = 0;
  for (std::size_t i = 0; i < msg->msg_iovlen && at < kGather; ++i) {
    std::size_t take = std::min(msg->msg_iov[i].iov_len, kGather - at);
    std::memcpy(gather_.data() + at, msg->msg_iov[i].iov_base, take);
    at += take;
  }
  return tls_->send(gather_.data(), at);
}

ssize_t Connection::in_recv(void* data, std::size_t n) {
  return tls_ ? tls_->recv(data, n) : sys_recv(fd(), data, n);
}

std::string Connection::write_error() const {
  return errno == EPROTO && tls_ ? tls_->error() : std::string("write failed: ") + std::strerror(errno);
}

bool Connection::tls_step() {
  switch (tls_->handshake()) {
    case TlsStream::Step::done:
      state_ = after_tls_;
      if (state_ == State::hello_sent) {
        auto hello = client_->hello();
        hs_out_.assign(hello.begin(), hello.end());
        flush();
      }
      return !closed();
    case TlsStream::Step::again:
      return false;
    case TlsStream::Step::failed:
      if (tls_->error().empty() || tls_->error().find("closed") != std::string::npos) closed_in_handshake_ = true;
      fail(tls_->error().empty() ? "TLS handshake failed" : tls_->error());
      return false;
  }
  return false;
}

}  // namespace ipc::transport::tcp
