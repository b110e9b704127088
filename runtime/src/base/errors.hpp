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

#include <stdexcept>
#include <string>

namespace ipc {

/// Base of every exception the runtime throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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

/// A wait with a deadline expired (bootstrap, connect).
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

/// A remote procedure failed on the rank that ran it (or could not run: unknown
/// procedure, other signature). Carries the rank, the procedure, the exception's type
/// and its message.
class RemoteError : public Error {
 public:
  RemoteError(int rank, std::string procedure, std::string type, std::string message, const std::string& where)
      : Error(where + ": procedure '" + procedure + "' " +
              (type.empty() ? std::string("failed: ") : "threw " + type + ": ") + message),
        rank_(rank),
        procedure_(std::move(procedure)),
        type_(std::move(type)),
        message_(std::move(message)) {}
  /// The rank the procedure ran on.
  int rank() const { return rank_; }
  const std::string& procedure() const { return procedure_; }
  /// The exception's type as the remote rank named it (empty: the call was refused).
  const std::string& type() const { return type_; }
  /// The exception's message.
  const std::string& message() const { return message_; }

 private:
  int rank_;
  std::string procedure_;
  std::string type_;
  std::string message_;
};

}  // namespace ipc

#endif  // IPC_BASE_ERRORS_HPP
