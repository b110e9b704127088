/// @file errors.hpp
/// Exceptions thrown by the runtime. Every message names the rank, the host and the
/// operation concerned.
//
// The ground floor's vocabulary: every layer throws these. Published to programs as
// <ipc/errors.hpp>, a copy the build makes (runtime/CMakeLists.txt,
// ipc_public_header), hence an include guard rather than #pragma once: a
// translation unit of the runtime may reach both.
#ifndef IPC_BASE_ERRORS_HPP
#define IPC_BASE_ERRORS_HPP

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ipc {

namespace detail {
/// Who this process is, "rank 3 on node2: ", while an ipc::Runtime exists (else null):
/// the start of every ipc::Error's message. Set once per Runtime, never freed (it may
/// be read by any thread at any time).
inline std::atomic<const std::string*>& error_origin() {
  static std::atomic<const std::string*> origin{nullptr};
  return origin;
}
/// `what` without this process's origin in front (for lines that name it already).
inline const char* without_origin(const char* what) {
  const std::string* o = error_origin().load(std::memory_order_acquire);
  return o && std::strncmp(what, o->c_str(), o->size()) == 0 ? what + o->size() : what;
}
}  // namespace detail

/// Base of every exception the runtime throws. Its message starts with the rank and
/// host that threw it ("rank 3 on node2: "), then names the operation and the peer.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(with_origin(what)) {}
  explicit Error(const char* what) : Error(std::string(what)) {}

 private:
  static std::string with_origin(const std::string& what) {
    const std::string* o = detail::error_origin().load(std::memory_order_acquire);
    return o ? *o + what : what;
  }
};

/// A peer rank is gone (its process ended or its connection broke) while an
/// operation needed it. A collective fails with it on every surviving rank of its
/// communicator, also on those that did not talk to the lost rank themselves.
class PeerLost : public Error {
 public:
  explicit PeerLost(const std::string& what, int peer = -1) : Error(what), peer_(peer) {}
  /// The rank that was lost (a rank of the job), or -1 when unknown.
  int peer() const { return peer_; }

 private:
  int peer_;
};

/// A wait with a deadline expired (the start-up fences: IPC_BOOTSTRAP_TIMEOUT).
class Timeout : public Error {
 public:
  using Error::Error;
};

/// A message did not fit the receive buffer or type.
class Truncation : public Error {
 public:
  using Error::Error;
};

/// The program used the API wrongly (bad rank, bad tag, second Runtime...).
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Bytes from outside broke the protocol, or a peer failed authentication.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

/// The job's start-up failed (bootstrap server unreachable, bad environment).
class BootstrapError : public Error {
 public:
  using Error::Error;
};

/// A remote procedure failed on the rank that ran it (it threw), or the call could not
/// run there (CallRefused). Carries the rank, the procedure, the exception's type and
/// its message.
class RemoteError : public Error {
 public:
  RemoteError(int rank, std::string procedure, std::string type, std::string message, const std::string& where)
      : RemoteError(rank, std::move(procedure), std::move(type), std::move(message), where, false) {}
  /// The rank the procedure ran on.
  int rank() const { return rank_; }
  const std::string& procedure() const { return procedure_; }
  /// The exception's type as the remote rank named it (empty: refused, or not a
  /// std::exception).
  const std::string& type() const { return type_; }
  /// The exception's message (or why the call was refused).
  const std::string& message() const { return message_; }
  /// True when the procedure never ran (CallRefused), false when it threw.
  bool refused() const { return refused_; }

 protected:
  RemoteError(int rank, std::string procedure, std::string type, std::string message, const std::string& where,
              bool refused)
      : Error(where + ": procedure '" + procedure + "' " +
              (refused          ? std::string("refused: ")
               : type.empty() ? std::string("failed: ")
                              : "threw " + type + ": ") +
              message),
        rank_(rank),
        procedure_(std::move(procedure)),
        type_(std::move(type)),
        message_(std::move(message)),
        refused_(refused) {}

 private:
  int rank_;
  std::string procedure_;
  std::string type_;
  std::string message_;
  bool refused_;
};

/// A unit of a semaphore or mutex came from a holder that died (ipc/sync.hpp): the
/// caller holds it now; what the holder guarded may be half done.
class OwnerLost : public Error {
 public:
  OwnerLost(const std::string& what, int rank) : Error(what), rank_(rank) {}
  /// The rank (of the semaphore's communicator) that died holding it.
  int rank() const { return rank_; }

 private:
  int rank_;
};

/// A push to a channel that was closed (ipc/channel.hpp).
class ChannelClosed : public Error {
 public:
  using Error::Error;
};

/// A call that never ran: no procedure of that name on the rank (after waiting
/// IPC_RPC_DEFINE_WAIT for its definition), a definition with other types, calls
/// nested too deep, a malformed request.
class CallRefused : public RemoteError {
 public:
  CallRefused(int rank, std::string procedure, std::string message, const std::string& where)
      : RemoteError(rank, std::move(procedure), "", std::move(message), where, true) {}
};

}  // namespace ipc

#endif  // IPC_BASE_ERRORS_HPP
