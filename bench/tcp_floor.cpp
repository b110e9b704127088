// The floor of any runtime over kernel TCP: a ping-pong of plain sockets on
// loopback, busy-polled, with nothing around the two system calls per message.
// Two processes (this one forks), pinned to CPUs 0 and 1 where there are two,
// TCP_NODELAY, the congestion control the runtime's connections use (IPC_TCP_CC,
// default reno: docs/transports.md), the same warm-up/iterations/median-of-repeats
// shape as harness.hpp.
// Prints "pingpong_rawsocket,<bytes>,<half round trip us>,us" per size (size 0 sends
// one byte per message).
//   bench_tcp_floor [--sizes 8,64] [--repeats 5] [--listen ADDR --peer-netns PATH]
// With --listen and --peer-netns the two processes sit on two hosts of a virtual
// cluster: this one listens on ADDR (an address of its network namespace), the child
// enters the namespace PATH (/run/netns/NAME) and connects to it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "floor.hpp"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_tcp_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("send");
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

void recv_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= static_cast<std::size_t>(r);
    } else if (r == 0) {
      std::fprintf(stderr, "bench_tcp_floor: peer closed\n");
      std::exit(1);
    } else if (errno != EAGAIN && errno != EINTR) {
      die("recv");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{8};
  int repeats = 5;
  const char* listen_addr = "127.0.0.1";
  const char* peer_netns = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--sizes") == 0) sizes = bench::floor::parse_sizes("bench_tcp_floor", argv[i + 1], 64 << 20);
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--listen") == 0) listen_addr = argv[i + 1];
    if (std::strcmp(argv[i], "--peer-netns") == 0) peer_netns = argv[i + 1];
  }
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, listen_addr, &a.sin_addr) != 1) die("--listen: not an IPv4 address");
  socklen_t len = sizeof a;
  if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 1) != 0 ||
      ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("listen");
  pid_t child = ::fork();
  if (child < 0) die("fork");
  const bool parent = child != 0;
  bench::floor::pin(parent ? 0 : 1);
  int fd;
  if (parent) {
    fd = ::accept(ls, nullptr, nullptr);
  } else {
    if (peer_netns) {
      int ns = ::open(peer_netns, O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) die(peer_netns);
      ::close(ns);
    }
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  }
  if (fd < 0) die(parent ? "accept" : "socket");
  ::close(ls);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const char* cc = std::getenv("IPC_TCP_CC");
  std::string algo = cc ? cc : "reno";
  if (!algo.empty() &&
      ::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, algo.data(), static_cast<socklen_t>(algo.size())) != 0)
    die(("congestion control " + algo).c_str());
  std::vector<char> buf(std::max<std::size_t>(1, *std::max_element(sizes.begin(), sizes.end())), 'x');
  for (std::size_t n : sizes) {
    const int iters = n <= 65536 ? 5000 : 200;
    // A message of no bytes is still a message: one byte goes (nothing would cross
    // the socket at all, and the "floor" would be two empty calls).
    const std::size_t wire = std::max<std::size_t>(n, 1);
    double us = bench::floor::half_round_trip_us(iters, repeats, [&] {
      if (parent) {
        send_all(fd, buf.data(), wire);
        recv_all(fd, buf.data(), wire);
      } else {
        recv_all(fd, buf.data(), wire);
        send_all(fd, buf.data(), wire);
      }
    });
    if (parent) std::printf("pingpong_rawsocket,%zu,%.4f,us\n", n, us);
  }
  ::close(fd);
  if (parent) {
    int st = 0;
    ::waitpid(child, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  }
  return 0;
}
