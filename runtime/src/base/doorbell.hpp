// The doorbell: how anything wakes a rank that sleeps. One per rank, the only
// mechanism of its kind: completions inside the process, shared-memory senders and
// readers freeing ring space, and node-group writers all ring it, and a rank's waiter
// sleeps on its descriptor (in epoll, beside the descriptors of transports that have
// their own, such as TCP's).
//
// It is a datagram socket bound in the abstract unix namespace under
// base::doorbell_name(job, rank): any process of the node can ring it by name with
// one sendto, no file is left behind, and it goes away with the process. A ring is
// one byte; the sleeper drains them all when it wakes. Ringing never blocks: when
// the socket's queue is full the bell is already ringing.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

namespace ipc::base {

class Doorbell {
 public:
  /// Where a doorbell is, from its name.
  struct Address {
    sockaddr_un addr{};
    socklen_t len = 0;
    static Address of(const std::string& name);
  };

  Doorbell() = default;
  /// Binds the doorbell `name`. @throws ipc::Error naming it.
  explicit Doorbell(const std::string& name);
  Doorbell(Doorbell&& o) noexcept;
  Doorbell& operator=(Doorbell&& o) noexcept;
  ~Doorbell();

  /// Readable while a ring is pending: sleep on it (epoll, poll).
  int fd() const { return fd_; }
  const Address& address() const { return self_; }
  /// Rings this doorbell (from a thread of its own process).
  void ring() const { ring(self_); }
  /// Rings the doorbell at `a` (any rank of this node).
  void ring(const Address& a) const;
  /// Consumes every pending ring.
  void drain() const;

 private:
  int fd_ = -1;
  Address self_;
};

}  // namespace ipc::base
