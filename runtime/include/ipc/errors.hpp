/// @file errors.hpp
/// Exceptions thrown by the runtime. Every message names the rank, the host and the
/// operation concerned.
#pragma once

#include <stdexcept>
#include <string>

namespace ipc {

/// Base of every exception the runtime throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A peer rank is gone (its process ended or its connection broke) while an
/// operation needed it.
class PeerLost : public Error {
 public:
  using Error::Error;
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

}  // namespace ipc
