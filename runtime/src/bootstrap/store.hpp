// The bootstrap store: how ranks find each other at start-up.
//
// put/get of short strings and a fence that returns once every rank of the job has
// called it, with every pair put before it. ipcrun serves it over TCP (TcpStore is the
// client); MemoryStore serves a job of threads in one process (unit tests) and a
// singleton run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "wire/secret.hpp"

namespace ipc::bootstrap {

using KeyValues = std::map<std::string, std::string>;

class Store {
 public:
  virtual ~Store() = default;
  virtual void put(const std::string& key, const std::string& value) = 0;
  /// Waits until `key` exists, at most `timeout`. @throws ipc::Timeout.
  virtual std::string get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  /// Returns when every rank has called fence, with every pair put so far; waits at
  /// most `timeout` (max(): for ever). @throws ipc::Timeout.
  virtual KeyValues fence(std::chrono::milliseconds timeout) = 0;
  KeyValues fence() { return fence(std::chrono::milliseconds::max()); }
  /// A line for ipcrun to print (transport reports); ignored where nobody prints.
  virtual void report(const std::string& line) { (void)line; }
};

/// In-process store shared by `size` ranks (threads).
class MemoryStore final : public Store {
 public:
  explicit MemoryStore(int size) : size_(size) {}
  void put(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, std::chrono::milliseconds timeout) override;
  KeyValues fence(std::chrono::milliseconds timeout) override;
  using Store::fence;

 private:
  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  KeyValues kv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
};

/// Client of the job's key-value server (its host's agent, which passes requests on to
/// ipcrun). Connects and authenticates in the constructor.
class TcpStore final : public Store {
 public:
  /// @throws ipc::BootstrapError naming the address when it cannot connect, or when
  /// the server fails authentication.
  TcpStore(const std::string& host_port, const wire::Secret& secret, int rank, std::chrono::milliseconds timeout);
  ~TcpStore() override;
  void put(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, std::chrono::milliseconds timeout) override;
  KeyValues fence(std::chrono::milliseconds timeout) override;
  using Store::fence;
  void report(const std::string& line) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipc::bootstrap
