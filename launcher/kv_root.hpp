// The job's key-value store, held by ipcrun: the pairs, the gets held until their key
// exists, the fence and the ranks' report lines. Its clients are numbered (a node
// agent's host index; 0 for a server that serves its ranks itself): requests name the
// client, and replies go to it through the sinks. One client's many ranks share
// replies: a client asks for a key once however many of its ranks wait for it, and a
// completed fence sends the pairs once to every client with a rank in it.
// Runs on one thread; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace ipc::launcher {

class KvRoot {
 public:
  using Pairs = std::shared_ptr<const std::vector<std::string>>;  // k1, v1, k2, v2, ... in key order
  struct Sinks {
    std::function<void(int client, const std::string& key, const std::string& value)> value;
    std::function<void(int client, const Pairs& pairs)> fenced;
    std::function<void(const std::string& line)> report;
  };

  KvRoot(int job_size, Sinks sinks);

  void put(std::string key, std::string value);
  /// value(client, key, v) once the key exists (at once if it does).
  void get(int client, const std::string& key);
  /// Whether `key` has been put (a rank's card: it has joined the job).
  bool has(const std::string& key) const { return store_.count(key) != 0; }
  /// Rank `rank` (of `client`) is in the fence. Once every rank is, or has ended,
  /// every client with a rank in it gets fenced(all pairs), and a new generation starts.
  void fence(int client, int rank);
  /// A line for the user; buffered until the next fence completes, then printed in
  /// order of (rank, arrival).
  void report(int rank, std::string line);
  /// `rank` has ended: fences complete without it from now on.
  void rank_gone(int rank);
  /// Prints the report lines still buffered; forgets held requests.
  void stop();
  std::uint64_t fences_completed() const { return fences_; }

 private:
  void complete_fence_if_ready();
  void flush_reports();

  int job_size_;
  Sinks sinks_;
  std::map<std::string, std::string> store_;
  std::multimap<std::string, int> gets_;
  std::set<int> fence_clients_;
  std::vector<bool> fenced_, gone_;
  int outstanding_;  // ranks neither fenced nor gone in this generation
  std::uint64_t fences_ = 0;
  struct Report {
    int rank;
    std::string line;
  };
  std::vector<Report> reports_;
};

}  // namespace ipc::launcher
