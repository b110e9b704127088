// The TCP transport: authenticated connections between ranks, opened lazily on the
// first frame to a peer.
//
// Sockets are Asio's (creation, options, acceptor); readiness is this transport's
// own epoll set, polled with a zero timeout by whichever thread holds the engine's
// progress lock. Asio's io_context lets only one thread at a time wait in its reactor,
// so a second thread's poll() would find nothing while the progress thread sleeps
// there; the engine needs every polling thread to see arrivals, and needs one fd to
// sleep on together with the other transports' doorbells (wait_fd()).
//
// A pair of ranks shares one connection, both ways (data and acknowledgements then
// travel together: two one-way connections cost every small message an extra ACK
// packet). A rank sends to a peer over the connection it accepted from that peer if
// there is one, else it opens one. When both connect at once, the lower rank's
// connection wins: the lower rank answers the higher one's hello with a redirect, and
// the higher rank, on accepting the lower rank's connection, moves the frames queued on
// its own (never opened, so never written) over to it. Frames to a peer thus keep
// their order.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/net.hpp"
#include "transport/tcp/tcp_connection.hpp"
#include "transport/transport.hpp"
#include "wire/secret.hpp"

namespace ipc::transport::tcp {

struct Options : Config {
  std::string bind_address = "127.0.0.1";
  std::size_t eager_limit = 64 * 1024;
  int buffer_bytes = 0;  // SO_SNDBUF/SO_RCVBUF; 0: the kernel's autotuning
  std::string congestion = "reno";  // TCP_CONGESTION of every connection; "": the system's default
  bool congestion_required = false;  // asked for by name: refusal is an error (else the default stays)
  std::optional<net::PortRange> ports;  // listen on the first free port of these; none: the kernel's choice
  std::chrono::milliseconds handshake_timeout{10000};  // for a connection to authenticate
  std::size_t max_pending = 64;  // connections without a handshake kept; more drop the oldest
  std::shared_ptr<TlsContext> tls;  // every connection over TLS (IPC_TLS); null: plain TCP
};

class TcpTransport final : public Transport {
 public:
  /// Binds and listens at once (port chosen by the kernel).
  /// @throws ipc::Error naming the address when it cannot.
  explicit TcpTransport(Options opt);
  ~TcpTransport() override;

  std::string_view name() const override { return "tcp"; }
  std::string card() const override;
  bool reaches(const PeerCard& me, const PeerCard& peer) const override;
  Endpoint& connect(const PeerCard& peer) override;
  std::size_t eager_limit() const override { return opt_.eager_limit; }
  bool poll(Sink& sink) override;
  int wait_fd() const override { return epfd_; }
  bool arm_sleep(std::uint64_t wants) override;
  void disarm_sleep(std::uint64_t wants) override;
  /// Connections, open or not (for tests).
  std::size_t pending() const;
  std::size_t connections() const { return conns_.size(); }
  bool idle() const override;
  void close() override;

 private:
  // A peer: where it listens, the connection frames to it go on, and why it is lost.
  struct Peer final : Endpoint {
    Peer(TcpTransport& t, int rank) : Endpoint(t, rank), tcp(t) {}
    void send(const wire::Frame& f, Completion* done) override;
    TcpTransport& tcp;
    net::HostPort addr;       // from its card
    Connection* conn = nullptr;  // the connection frames to it go on, once there is one
    std::string lost;         // why it is unreachable ("" = fine)
    // Redirected, waiting for the peer's own connection: frames held meanwhile.
    std::vector<Connection::Unsent> held;
    bool awaiting = false;
  };

  Connection* connect_to(Peer& p);
  /// Sets opt_.congestion on `fd`. @throws ipc::Error naming IPC_TCP_CC when the kernel
  /// refuses it and it was asked for by name; otherwise the system's default stays.
  void set_congestion(int fd) const;
  void watch(Connection* c);
  /// Puts `c` in the epoll set, or takes it out (a hot connection), as its state says.
  void update_interest(Connection* c);
  void update_all();
  void accept_all();
  /// Drops accepted connections past their handshake deadline; resumes accepting
  /// after a pause. Cheap when there is nothing to do.
  void check_pending();
  void pause_accepting();
  void reap(Sink& sink);
  /// One line per rejected connection would let a port scan flood stderr: the first
  /// of a window goes out at once, the others are counted and summed up by address.
  void report_rejection(const std::string& from, const std::string& why);
  void flush_rejections(bool force);
  bool on_hello(Connection& c, int peer);
  void on_open(Connection& c);
  void adopt(Connection& to, std::vector<Connection::Unsent> frames);

  Options opt_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  int epfd_ = -1;
  bool closing_ = false;
  unsigned polls_ = 0;
  std::atomic<int> sleeping_{0};      // threads asleep on wait_fd(): every connection is in the set
  std::atomic<bool> resync_{false};   // the last sleeper left: the next poll takes hot ones out
  bool dirty_ = false;  // a connection may have closed outside poll(): reap soon
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Peer>> peers_;  // by rank
  bool has_pending_ = false;  // some accepted connection may still be in its handshake
  bool accept_paused_ = false;  // the acceptor is out of the epoll set (out of descriptors)
  std::chrono::steady_clock::time_point next_check_{};
  std::chrono::steady_clock::time_point accept_again_{};
  struct Rejections {
    std::chrono::steady_clock::time_point window_end{};
    std::vector<std::pair<std::string, int>> by_address;  // counted since the first line
    int total = 0;
  } rejections_;
};

}  // namespace ipc::transport::tcp
