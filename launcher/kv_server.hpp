// ipcrun's bootstrap server: the key-value store the ranks meet through.
//
// Every connection starts with the server side of the mutual HMAC handshake
// (wire/handshake.hpp) over the job secret; a client that fails it, or does not
// finish it within the deadline, is logged and dropped, and nothing it sent is
// read. After it, the connection speaks wire/kv_protocol.hpp:
//
//   put(key, value)  store, overwriting; no reply
//   get(key)         value(v) as soon as the key exists (held until a put arrives)
//   fence()          once every rank of the job has fenced in the current generation
//                    (or has ended: rank_gone), every waiting connection gets
//                    fenced(k1, v1, k2, v2, ...) with all pairs (in key order); the
//                    next generation starts
//   report(line)     a line for the user, printed as "[ipcrun] <line>" on stderr:
//                    buffered until the next fence completes, then printed sorted
//                    by (sender's rank, arrival), so that a job's start-up report
//                    comes out whole and in order
//   anything else    error("unexpected request"), then the connection closes
//
// A connection that closes is normal (its rank has finished). Runs entirely on
// the io_context's thread; it is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "kv_root.hpp"
#include "wire/kv_protocol.hpp"
#include "wire/secret.hpp"

namespace ipc::launcher {

/// Where a KvServer that is not the store itself (a node agent's) sends its ranks'
/// requests: one get per key however many ranks wait for it; replies come back
/// through KvServer::deliver_value and deliver_fenced.
struct KvUpstream {
  std::function<void(std::string key, std::string value)> put;
  std::function<void(const std::string& key)> get;
  std::function<void(int rank)> fence;
  std::function<void(int rank, std::string line)> report;
};

/// How a KvServer reports and which limits it applies.
struct KvServerHooks {
  /// Unset (the default): the server holds the store itself (a KvRoot).
  KvUpstream upstream;
  /// Receives each reported line (as the rank sent it), in print order.
  /// Default: writes "[ipcrun] <line>\n" to stderr.
  std::function<void(const std::string&)> report;
  /// Receives each diagnostic (a rejected or dropped connection), without the
  /// "ipcrun: " prefix. Default: writes "ipcrun: <text>\n" to stderr.
  std::function<void(const std::string&)> log;
  /// Time a client has to complete the handshake.
  std::chrono::milliseconds handshake_timeout{10000};
  /// Limits applied to every message decoded.
  wire::KvLimits limits{};
};

class KvServer {
 public:
  using Hooks = KvServerHooks;

  /// Listens on `listen` at once (port 0: the kernel picks; see port()); serves
  /// when `io` runs. `job_size` is the number of fences that complete a fence.
  /// @throws std::system_error when the address cannot be bound.
  KvServer(asio::io_context& io, const wire::Secret& secret, int job_size,
           const asio::ip::tcp::endpoint& listen, Hooks hooks = {});
  /// Calls stop().
  ~KvServer();
  KvServer(const KvServer&) = delete;
  KvServer& operator=(const KvServer&) = delete;

  /// The port listened on.
  std::uint16_t port() const;
  asio::ip::tcp::endpoint endpoint() const;
  /// Fences completed so far.
  std::uint64_t fences_completed() const;
  /// `rank` has ended: fences complete without it from now on (so that the ranks
  /// that run on after a failure, with --keep-going, can finish). Only for a server
  /// that holds the store; with an upstream, the upstream learns it its own way.
  void rank_gone(int rank);
  /// The value of `key` for every rank waiting for it (from the upstream).
  void deliver_value(const std::string& key, const std::string& value);
  /// The fence completed: `pairs` for every rank in it (from the upstream).
  void deliver_fenced(const KvRoot::Pairs& pairs);
  /// Stops accepting, closes every connection (requests still held get no reply)
  /// and prints report lines still buffered. Idempotent.
  void stop();

  struct State;  // shared with the connections' handlers

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ipc::launcher
