// One TCP connection of the TCP transport: handshake, framing, queued writes.
//
// Reads go into a 64 KiB staging buffer that usually holds many small frames after
// one recv(); a large payload is copied out of staging for what is there and then
// read straight into its destination, so large messages cross no extra buffer.
// Writes gather header and payload with one sendmsg() and are tried at once, so a
// message usually leaves within send(); what the socket refuses waits in a queue.
#pragma once

#include <asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/tcp/tls.hpp"
#include "transport/transport.hpp"
#include "wire/frame.hpp"
#include "wire/handshake.hpp"

namespace ipc::transport::tcp {

class Connection {
 public:
  enum class State { connecting, tls, hello_sent, wait_hello, wait_proof, open, closed };

  /// An outgoing connection to `peer`, connect() already started. With `tls`, TLS
  /// comes first (transport/tcp/tls.hpp), then the job's handshake inside it.
  static std::unique_ptr<Connection> outgoing(asio::ip::tcp::socket s, int peer, const wire::Secret& secret,
                                              int my_rank, const TlsContext* tls = nullptr);
  /// An accepted connection; the peer says who it is in the handshake.
  /// `on_hello` decides, on a client's hello claiming rank `peer`, whether to go on
  /// (true) or to redirect the client to the connection this side opened (false).
  /// `on_open` runs when the handshake has authenticated a rank in [0, job_size).
  static std::unique_ptr<Connection> incoming(asio::ip::tcp::socket s, const wire::Secret& secret, int job_size,
                                              std::function<bool(Connection&, int peer)> on_hello,
                                              std::function<void(Connection&)> on_open,
                                              const TlsContext* tls = nullptr);

  int fd() const { return fd_; }
  void set_no_delay();
  State state() const { return state_; }
  int peer() const { return peer_; }
  bool open() const { return state_ == State::open; }
  bool closed() const { return state_ == State::closed; }
  std::string remote() const;
  const std::string& error() const { return error_; }
  /// Whether the socket must be watched for writability.
  bool wants_write() const {
    return state_ == State::connecting || !hs_out_.empty() || (open() && !outq_.empty()) ||
           (tls_ && tls_->wants_write() && (state_ == State::tls || !outq_.empty()));
  }
  /// Decrypted bytes wait inside TLS, where epoll does not see them: read it anyway.
  bool buffered() const { return tls_ && tls_->pending(); }
  bool idle() const { return outq_.empty() && hs_out_.empty(); }

  /// A frame as it goes on the stream: prefix and head (encoded), then the payload.
  struct Unsent {
    // Left unset (of() writes the bytes it uses): zeroing it cost a `rep stos` per frame.
    std::array<std::byte, wire::kStreamPrefix + wire::kMaxHead> head;
    std::size_t head_len = 0;  // prefix + head
    const std::byte* payload = nullptr;
    std::size_t length = 0;
    Completion* done = nullptr;
    std::unique_ptr<std::byte[]> owned;
    /// Encodes `f`'s prefix and head.
    static Unsent of(const wire::Frame& f, Completion* done);
  };

  /// Queues a frame; tries to write it at once when nothing is ahead of it. A frame
  /// whose payload is at most `copy_limit` bytes and that cannot leave at once is
  /// copied, and its completion fires right away (eager sends never wait for the wire).
  void send(const wire::Frame& f, Completion* done, std::size_t copy_limit);
  /// The same for a frame already encoded (one handed over from another connection).
  void send(Unsent u, std::size_t copy_limit);
  /// Takes the queued frames of a connection that never opened.
  std::vector<Unsent> take_unsent();
  /// Closes without an error: it gave way to the peer's connection (no report).
  void close_quietly() {
    quiet_ = true;
    state_ = State::closed;
  }
  bool quiet() const { return quiet_; }
  /// The peer turned this connection away for the one it opened to us.
  bool redirected() const { return redirected_; }
  bool outgoing() const { return outgoing_; }
  /// Closed by the other side before the handshake ended (no bytes were refused).
  bool closed_in_handshake() const { return closed_in_handshake_; }
  /// An accepted connection still in its handshake, and when it was accepted.
  bool pending() const {
    return !outgoing_ && (state_ == State::tls || state_ == State::wait_hello || state_ == State::wait_proof);
  }
  std::chrono::steady_clock::time_point accepted_at() const { return accepted_at_; }
  /// A frame was being read when the connection closed: hands it to the sink as
  /// aborted (once).
  void abort_frame(Sink& sink) {
    if (!in_frame_) return;
    in_frame_ = false;
    sink.on_frame_aborted(peer_, place_.token);
  }
  /// Readable: reads and delivers frames. Writable: writes queued bytes.
  /// Returns whether any byte came in.
  bool on_readable(Sink& sink, const wire::FrameLimits& limits, std::size_t max_bytes);
  void on_writable();
  /// Marks the connection failed with `why` (first reason wins), fails queued sends.
  void fail(const std::string& why);
  void close();

  unsigned events = 0;  // epoll events it is registered for, 0: not in the set (the transport's bookkeeping)

 private:
  struct Out : Unsent {
    std::size_t sent = 0;  // bytes of prefix, head and payload already written
    std::size_t total() const { return head_len + length; }
  };

  Connection(asio::ip::tcp::socket s, State st, int peer, const wire::Secret& secret);

 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

 private:
  void flush();
  /// Queues `u`, of which `sent` bytes already left, and writes what it can.
  void enqueue(Unsent u, std::size_t sent, std::size_t copy_limit);
  bool write_handshake();
  void process(Sink& sink, const wire::FrameLimits& limits);
  bool handshake_step();
  /// Advances TLS's handshake; true once it is done (the job's handshake follows).
  bool tls_step();
  void finish_frame(Sink& sink);
  // The socket's calls, through TLS when it is on (as send(2), sendmsg(2), recv(2)).
  ssize_t out_send(const void* data, std::size_t n);
  ssize_t out_sendmsg(const msghdr* msg);
  ssize_t in_recv(void* data, std::size_t n);
  /// Why a write failed (errno: the socket's, or TLS's).
  std::string write_error() const;

  // The socket, taken from Asio at once: a descriptor Asio knows stays in its
  // reactor's epoll set, which costs every arriving segment a callback.
  int fd_ = -1;
  State state_;
  int peer_;
  std::string error_;
  std::optional<wire::ClientHandshake> client_;
  std::optional<wire::ServerHandshake> server_;
  int job_size_ = 0;
  std::function<bool(Connection&, int)> on_hello_;
  std::function<void(Connection&)> on_open_;
  bool quiet_ = false;
  bool redirected_ = false;
  bool outgoing_ = false;
  bool closed_in_handshake_ = false;
  std::chrono::steady_clock::time_point accepted_at_{};
  int my_rank_ = -1;
  std::string remote_;  // an accepted connection's peer address, taken at once
  std::unique_ptr<TlsStream> tls_;
  State after_tls_ = State::closed;  // where the job's handshake starts once TLS is up
  std::vector<std::byte> gather_;    // TLS: a sendmsg's pieces in one buffer

  std::vector<std::byte> hs_out_;
  std::deque<Out> outq_;

  std::vector<std::byte> in_;
  std::size_t rd_ = 0, wr_ = 0;
  bool in_frame_ = false;
  std::uint64_t length_ = 0;  // payload bytes of the frame being read
  Sink::Placement place_{};
  std::size_t got_ = 0;
};

}  // namespace ipc::transport::tcp
