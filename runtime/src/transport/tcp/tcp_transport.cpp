#include "base/copy.hpp"
#include "transport/tcp/tcp_transport.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "base/errors.hpp"
#include "base/params.hpp"
#include "transport/registry.hpp"

namespace ipc::transport::tcp {
namespace {
constexpr std::size_t kReadBudget = 4 << 20;  // bytes per connection per poll, for fairness
// Up to this many connections, open ones with nothing to write are "hot": read
// directly on every poll and kept out of the epoll set. A socket in an epoll set
// costs every arriving segment a callback under the set's lock, on the sending CPU
// and on the message's way: measured on loopback, 0.2 us of a 5.2 us half round trip.
constexpr std::size_t kDirectMax = 4;
}

TcpTransport::TcpTransport(Options opt)
    : opt_(std::move(opt)),
      acceptor_(io_) {
  for (int r = 0; r < opt_.size; ++r) peers_.push_back(std::make_unique<Peer>(*this, r));
  asio::error_code ec;
  auto addr = asio::ip::make_address(opt_.bind_address, ec);
  if (ec) throw Error("tcp: IPC_TCP_ADDR='" + opt_.bind_address + "' is not an IP address");
  asio::ip::tcp::endpoint ep(addr, 0);
  // Opens the listening socket with the options accepted sockets inherit, and binds it.
  auto open_and_bind = [&](unsigned short port) {
    ec.clear();
    if (acceptor_.is_open()) acceptor_.close(ec);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) set_congestion(acceptor_.native_handle());
    if (!ec && opt_.buffer_bytes > 0) {  // window scale is fixed at SYN
      acceptor_.set_option(asio::socket_base::receive_buffer_size(opt_.buffer_bytes), ec);
      acceptor_.set_option(asio::socket_base::send_buffer_size(opt_.buffer_bytes), ec);
      ec.clear();
    }
    ep.port(port);
    // A port of a range may still have connections in TIME-WAIT from an earlier job:
    // reusable then, while a listener on it still refuses (bind or listen fails).
    if (!ec && port != 0) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  };
  if (opt_.ports) {
    // The first free port of the range (firewalled sites open only those). A socket
    // whose bind failed is not tried again: Linux may refuse it a free port then.
    for (unsigned p = opt_.ports->first; p <= opt_.ports->last; ++p) {
      open_and_bind(static_cast<unsigned short>(p));
      if (ec != asio::error::address_in_use) break;
    }
    if (ec == asio::error::address_in_use)
      throw Error("tcp: no free port in IPC_TCP_PORTS=" + std::to_string(opt_.ports->first) + "-" +
                  std::to_string(opt_.ports->last) + " on " + opt_.bind_address + " (every one is in use)");
  } else {
    open_and_bind(0);
  }
  if (!ec) acceptor_.non_blocking(true, ec);
  if (ec) throw Error("tcp: cannot listen on " + opt_.bind_address + ": " + ec.message());
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw Error(std::string("tcp: epoll_create1 failed: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the acceptor
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, acceptor_.native_handle(), &ev);
}

void TcpTransport::set_congestion(int fd) const {
  if (opt_.congestion.empty()) return;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, opt_.congestion.data(),
                   static_cast<socklen_t>(opt_.congestion.size())) == 0 ||
      !opt_.congestion_required)  // the default, refused (a sandbox, an admin's list): keep the system's
    return;
  std::string why = std::strerror(errno);
  std::string allowed;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_allowed_congestion_control", "r")) {
    char line[256] = {};
    if (std::fgets(line, sizeof line, f)) allowed = line;
    std::fclose(f);
    while (!allowed.empty() && allowed.back() == '\n') allowed.pop_back();
  }
  throw Error("tcp: IPC_TCP_CC='" + opt_.congestion + "': the kernel refuses this congestion control (" + why + ")" +
              (allowed.empty() ? std::string() : "; allowed here: " + allowed + "; '' keeps the system's default"));
}

TcpTransport::~TcpTransport() {
  closing_ = true;
  for (auto& c : conns_) c->close();
  conns_.clear();
  if (epfd_ >= 0) ::close(epfd_);
}

std::string TcpTransport::card() const {
  auto ep = acceptor_.local_endpoint();
  auto a = ep.address();
  std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return host + ":" + std::to_string(ep.port());
}

bool TcpTransport::reaches(const PeerCard&, const PeerCard& peer) const { return peer.cards.count("tcp") > 0; }

Endpoint& TcpTransport::connect(const PeerCard& peer) {
  Peer& p = *peers_.at(static_cast<std::size_t>(peer.rank));
  p.addr = net::parse_host_port(peer.cards.at("tcp"), "tcp card of rank " + std::to_string(peer.rank));
  return p;
}

void TcpTransport::watch(Connection* c) {
  c->events = 0;
  update_interest(c);
}

void TcpTransport::update_interest(Connection* c) {
  if (c->closed()) return;
  bool hot = sleeping_.load(std::memory_order_relaxed) == 0 && c->open() && !c->wants_write() &&
             conns_.size() <= kDirectMax;
  unsigned want = hot ? 0u : EPOLLIN | (c->wants_write() ? EPOLLOUT : 0u);
  if (want == c->events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = c;
  int op = c->events == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  ::epoll_ctl(epfd_, op, c->fd(), &ev);
  c->events = want;
}

void TcpTransport::update_all() {
  for (auto& c : conns_) update_interest(c.get());
}

// A thread sleeps on wait_fd(): every connection goes back into the set (level-
// triggered, so input already waiting wakes it at once). Called with the progress
// lock held. disarm_sleep() is not: the next poll takes the hot ones out again.
bool TcpTransport::arm_sleep(std::uint64_t) {  // (every arrival wakes it)
  if (sleeping_.fetch_add(1, std::memory_order_relaxed) == 0) update_all();
  // Bytes TLS has decrypted already never wake an epoll: poll instead of sleeping.
  if (opt_.tls)
    for (auto& c : conns_)
      if (c->buffered()) return false;
  return true;
}

void TcpTransport::disarm_sleep(std::uint64_t) {
  if (sleeping_.fetch_sub(1, std::memory_order_relaxed) == 1) resync_.store(true, std::memory_order_release);
}

Connection* TcpTransport::connect_to(Peer& p) {
  const int peer = p.peer();
  const net::HostPort& hp = p.addr;
  std::string addr = hp.host + ":" + std::to_string(hp.port);
  asio::error_code ec;
  asio::ip::tcp::endpoint ep(asio::ip::make_address(hp.host, ec), hp.port);
  asio::ip::tcp::socket s(io_);
  if (!ec) s.open(ep.protocol(), ec);
  if (!ec) set_congestion(s.native_handle());
  if (!ec && opt_.buffer_bytes > 0) {
    asio::error_code ignored;
    s.set_option(asio::socket_base::receive_buffer_size(opt_.buffer_bytes), ignored);
    s.set_option(asio::socket_base::send_buffer_size(opt_.buffer_bytes), ignored);
  }
  if (!ec) s.non_blocking(true, ec);
  if (!ec) {
    if (::connect(s.native_handle(), ep.data(), static_cast<socklen_t>(ep.size())) != 0 && errno != EINPROGRESS)
      ec = asio::error_code(errno, asio::system_category());
  }
  auto c = Connection::outgoing(std::move(s), peer, opt_.secret, opt_.rank, opt_.tls.get());
  if (ec) c->fail("cannot connect to rank " + std::to_string(peer) + " at " + addr + ": " + ec.message());
  Connection* raw = c.get();
  conns_.push_back(std::move(c));
  if (!raw->closed()) watch(raw);
  if (conns_.size() == kDirectMax + 1) update_all();  // no longer few: all into the set
  return raw;
}

// On the way of every message: one call from the engine to the connection's write.
void TcpTransport::Peer::send(const wire::Frame& f, Completion* done) {
  TcpTransport& t = tcp;
  if (!lost.empty()) {
    if (done) done->complete(std::make_error_code(std::errc::connection_aborted));
    return;
  }
  Connection* c = conn;
  if (!c && awaiting) {
    // The peer's connection is on its way: hold the frame (an eager one as a copy).
    auto u = Connection::Unsent::of(f, done);
    if (done && f.length <= t.opt_.eager_limit) {
      u.owned.reset(new std::byte[f.length ? f.length : 1]);
      if (f.length) base::copy_bytes(u.owned.get(), f.payload, f.length);
      u.payload = u.owned.get();
      u.done = nullptr;
      done->complete({});
    }
    held.push_back(std::move(u));
    return;
  }
  if (!c) c = conn = t.connect_to(*this);
  c->send(f, done, t.opt_.eager_limit);
  if (c->closed())
    t.dirty_ = true;
  else if (c->events != 0 || c->wants_write())  // a hot one that sent all stays as it is
    t.update_interest(c);
}

bool TcpTransport::on_hello(Connection& c, int peer) {
  Connection* mine = peers_[static_cast<std::size_t>(peer)]->conn;
  // Both connecting: the lower rank's connection wins.
  return !(mine && mine != &c && opt_.rank < peer);
}

void TcpTransport::adopt(Connection& to, std::vector<Connection::Unsent> frames) {
  for (auto& u : frames) to.send(std::move(u), opt_.eager_limit);
  update_interest(&to);
}

void TcpTransport::on_open(Connection& c) {
  Peer& p = *peers_[static_cast<std::size_t>(c.peer())];
  Connection* mine = p.conn;
  if (!mine) {
    p.conn = &c;
    p.awaiting = false;
    adopt(c, std::move(p.held));
    p.held.clear();
  } else if (mine != &c && mine->outgoing() && !mine->open() && opt_.rank > c.peer()) {
    // The lower rank's connection wins: ours never opened, so nothing of it was
    // written; its frames move over in order.
    p.conn = &c;
    adopt(c, mine->take_unsent());
    mine->close_quietly();
  }
}

void TcpTransport::accept_all() {
  for (;;) {
    asio::error_code ec;
    asio::ip::tcp::socket s(io_);
    acceptor_.accept(s, ec);
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
        ec.value() == ENFILE) {
      // The listening socket stays readable, and epoll would report it at every poll:
      // stop watching it for a while (the peers are served meanwhile), and make room
      // by dropping the oldest stranger.
      pause_accepting();
      return;
    }
    if (ec) return;  // would_block, or a transient error: epoll says when to retry
    s.non_blocking(true, ec);
    if (ec) continue;
    auto c = Connection::incoming(
        std::move(s), opt_.secret, opt_.size, [this](Connection& conn, int peer) { return on_hello(conn, peer); },
        [this](Connection& conn) { on_open(conn); }, opt_.tls.get());
    Connection* raw = c.get();
    conns_.push_back(std::move(c));
    watch(raw);
    if (conns_.size() == kDirectMax + 1) update_all();
    has_pending_ = true;
    // A cap on strangers: the oldest connection still without a handshake gives way.
    std::size_t pending = 0;
    Connection* oldest = nullptr;
    for (auto& k : conns_)
      if (k->pending()) {
        ++pending;
        if (!oldest || k->accepted_at() < oldest->accepted_at()) oldest = k.get();
      }
    if (pending > opt_.max_pending && oldest) {
      oldest->fail("dropped: more than " + std::to_string(opt_.max_pending) + " connections without a handshake");
      dirty_ = true;
    }
  }
}

void TcpTransport::pause_accepting() {
  if (!accept_paused_) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, acceptor_.native_handle(), nullptr);
    accept_paused_ = true;
  }
  accept_again_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  has_pending_ = true;  // check_pending() resumes it
  Connection* oldest = nullptr;
  for (auto& k : conns_)
    if (k->pending() && (!oldest || k->accepted_at() < oldest->accepted_at())) oldest = k.get();
  if (oldest) {
    oldest->fail("dropped: the rank is out of descriptors");
    dirty_ = true;
  }
}

void TcpTransport::check_pending() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return;
  next_check_ = now + std::chrono::milliseconds(50);
  if (accept_paused_ && now >= accept_again_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the acceptor
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, acceptor_.native_handle(), &ev);
    accept_paused_ = false;
  }
  bool any = false;
  for (auto& k : conns_) {
    if (!k->pending()) continue;
    if (now - k->accepted_at() > opt_.handshake_timeout) {
      std::ostringstream limit;
      limit << std::chrono::duration<double>(opt_.handshake_timeout).count();
      k->fail("no handshake within " + limit.str() + " s");
      dirty_ = true;
    } else {
      any = true;
    }
  }
  flush_rejections(false);
  has_pending_ = any || accept_paused_ || rejections_.total > 0;
}

void TcpTransport::report_rejection(const std::string& from, const std::string& why) {
  auto now = std::chrono::steady_clock::now();
  if (now >= rejections_.window_end) flush_rejections(true);
  if (rejections_.window_end == std::chrono::steady_clock::time_point{} || now >= rejections_.window_end) {
    // The first of a window: at once, whole.
    rejections_.window_end = now + std::chrono::seconds(5);
    std::cerr << "ipc: rank " << opt_.rank << " rejected a TCP connection from " << from << ": " << why << std::endl;
    return;
  }
  auto host = from.substr(0, from.rfind(':'));
  ++rejections_.total;
  for (auto& [addr, n] : rejections_.by_address)
    if (addr == host) {
      ++n;
      return;
    }
  rejections_.by_address.emplace_back(host, 1);
  has_pending_ = true;  // check_pending() sums them up when the window ends
}

void TcpTransport::flush_rejections(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (rejections_.total == 0) {
    if (now >= rejections_.window_end) rejections_.window_end = {};
    return;
  }
  if (!force && now < rejections_.window_end) return;
  std::string list;
  std::size_t shown = 0;
  for (auto& [addr, n] : rejections_.by_address) {
    if (shown++ == 4) {
      list += ", and " + std::to_string(rejections_.by_address.size() - 4) + " other addresses";
      break;
    }
    list += (list.empty() ? "" : ", ") + std::to_string(n) + " from " + addr;
  }
  std::cerr << "ipc: rank " << opt_.rank << " rejected " << rejections_.total << " more TCP connection"
            << (rejections_.total == 1 ? "" : "s") << " in the last 5 s (" << list << ")" << std::endl;
  rejections_.total = 0;
  rejections_.by_address.clear();
  rejections_.window_end = {};
}

bool TcpTransport::poll(Sink& sink) {
  if (resync_.load(std::memory_order_relaxed) && resync_.exchange(false, std::memory_order_acquire)) update_all();
  if (has_pending_) check_pending();
  if (dirty_) {
    dirty_ = false;
    reap(sink);
  }
  // With a few connections, all hot (open, nothing to write), reading them directly
  // saves the epoll_wait on the way of every message; every 16th poll still asks
  // epoll (new connections on the acceptor).
  if ((++polls_ & 15) != 0 && !conns_.empty() &&
      std::all_of(conns_.begin(), conns_.end(), [](auto& c) { return c->events == 0 && !c->closed(); })) {
    bool any = false;
    for (std::size_t i = 0; i < conns_.size(); ++i) any |= conns_[i]->on_readable(sink, opt_.limits, kReadBudget);
    // Frames handled here send only through send(), which updates the interest set
    // itself: only a connection that failed needs more.
    if (any && std::any_of(conns_.begin(), conns_.end(), [](auto& c) { return c->closed(); })) reap(sink);
    return any;
  }
  epoll_event evs[32];
  int n = ::epoll_wait(epfd_, evs, 32, 0);
  bool any = n > 0;
  // TLS: what was decrypted and not yet read (a read budget ran out) waits unseen.
  if (opt_.tls)
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      Connection* c = conns_[i].get();
      if (c->events != 0 && c->open() && c->buffered()) any |= c->on_readable(sink, opt_.limits, kReadBudget);
    }
  // Hot connections are not in the set: read them here.
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    Connection* c = conns_[i].get();
    if (c->events == 0 && c->open()) any |= c->on_readable(sink, opt_.limits, kReadBudget);
  }
  if (!any) return false;
  for (int i = 0; i < n; ++i) {
    auto* c = static_cast<Connection*>(evs[i].data.ptr);
    if (!c) {
      accept_all();
      continue;
    }
    if (c->closed()) continue;
    if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) c->on_writable();
    if (!c->closed() && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state() != Connection::State::connecting)
      c->on_readable(sink, opt_.limits, kReadBudget);
  }
  for (auto& c : conns_) update_interest(c.get());
  reap(sink);
  return true;
}

void TcpTransport::reap(Sink& sink) {
  // A peer is lost as a whole: when one of its connections fails, its others close
  // too, and frames half read on any of them are aborted before the loss is reported
  // (the engine then fails requests whose buffers nobody may touch afterwards).
  for (auto& c : conns_) {
    if (!c->closed() || c->quiet() || c->peer() < 0) continue;
    for (auto& other : conns_)
      if (other.get() != c.get() && other->peer() == c->peer() && !other->closed())
        other->fail(c->error());
  }
  for (auto& c : conns_)
    if (c->closed()) c->abort_frame(sink);
  for (std::size_t i = 0; i < conns_.size();) {
    Connection* c = conns_[i].get();
    if (!c->closed()) {
      ++i;
      continue;
    }
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd(), nullptr);
    int peer = c->peer();
    if (c->quiet()) {
      // Gave way to the peer's connection: not an error.
      if (c->redirected()) {
        Peer& p = *peers_[static_cast<std::size_t>(peer)];
        auto frames = c->take_unsent();
        if (p.conn == c) {
          p.conn = nullptr;
          p.awaiting = true;
        }
        for (auto& u : frames) p.held.push_back(std::move(u));
        if (p.conn) {  // the peer's connection already opened
          adopt(*p.conn, std::move(p.held));
          p.held.clear();
        }
      }
    } else if (!closing_) {
      if (peer >= 0) {
        Peer& p = *peers_[static_cast<std::size_t>(peer)];
        if (p.lost.empty()) {
          p.lost = c->error().empty() ? "connection lost" : c->error();
          p.awaiting = false;
          auto held = std::move(p.held);
          p.held.clear();
          for (auto& u : held)
            if (u.done) u.done->complete(std::make_error_code(std::errc::connection_aborted));
          sink.on_peer_lost(peer, p.lost);
        }
      } else if (!c->closed_in_handshake()) {
        // A peer that closes before the end of the handshake (a connection that gave
        // way to the other one of a pair) refused nothing: only failures are logged.
        report_rejection(c->remote(), c->error());
      }
    }
    for (auto& p : peers_)
      if (p->conn == c) p->conn = nullptr;
    c->close();
    conns_.erase(conns_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

bool TcpTransport::idle() const {
  for (auto& p : peers_)
    if (!p->held.empty()) return false;
  return std::all_of(conns_.begin(), conns_.end(), [](auto& c) { return c->closed() || c->idle(); });
}

void TcpTransport::close() {
  closing_ = true;
  for (auto& c : conns_) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd(), nullptr);
    c->fail("the transport was closed");  // queued sends complete with an error
    c->close();
  }
  for (auto& p : peers_) {
    auto held = std::move(p->held);
    p->held.clear();
    for (auto& u : held)
      if (u.done) u.done->complete(std::make_error_code(std::errc::connection_aborted));
  }
  conns_.clear();
  for (auto& p : peers_) p->conn = nullptr;
  asio::error_code ec;
  acceptor_.close(ec);
}

namespace {

std::unique_ptr<Transport> open_tcp(const Config& cfg) {
  Options o;
  static_cast<Config&>(o) = cfg;
  // An interface named (IPC_TCP_IFACE, set by --iface) wins over an address: each
  // host resolves it to its own address there.
  std::string iface = base::param("IPC_TCP_IFACE");
  o.bind_address = iface.empty() ? base::param("IPC_TCP_ADDR") : net::interface_address(iface, "IPC_TCP_IFACE");
  // Under an engine nobody sets the address per host (ipcrun does): unless told, a
  // rank listens on its host's first address beyond loopback, which other hosts reach.
  if (cfg.launcher == base::Launcher::engine && iface.empty() && !std::getenv("IPC_TCP_ADDR"))
    for (auto& a : net::ipv4_addresses())
      if ((a.value >> 24) != 127) {
        o.bind_address = a.address;
        break;
      }
  if (std::string ports = base::param("IPC_TCP_PORTS"); !ports.empty())
    o.ports = net::parse_port_range(ports, "IPC_TCP_PORTS");
  o.eager_limit = static_cast<std::size_t>(base::param_int("IPC_TCP_EAGER"));
  o.buffer_bytes = static_cast<int>(base::param_int("IPC_TCP_BUFFER"));
  o.congestion = base::param("IPC_TCP_CC");
  o.congestion_required = std::getenv("IPC_TCP_CC") != nullptr;
  o.handshake_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(std::min(base::param_seconds("IPC_TCP_HANDSHAKE_TIMEOUT"), 1e9)));
  o.max_pending = static_cast<std::size_t>(std::max<long long>(1, base::param_int("IPC_TCP_MAX_PENDING")));
  o.tls = TlsContext::from_params();
  return std::make_unique<TcpTransport>(o);
}

}  // namespace

extern const Descriptor descriptor;
const Descriptor descriptor{"tcp", &open_tcp};

}  // namespace ipc::transport::tcp
