#include "kv_root.hpp"

#include <algorithm>

namespace ipc::launcher {

KvRoot::KvRoot(int job_size, Sinks sinks)
    : job_size_(job_size),
      sinks_(std::move(sinks)),
      fenced_(static_cast<std::size_t>(job_size), false),
      gone_(static_cast<std::size_t>(job_size), false),
      outstanding_(job_size) {}

void KvRoot::put(std::string key, std::string value) {
  auto [first, last] = gets_.equal_range(key);
  if (first != last) {
    std::vector<int> clients;
    for (auto it = first; it != last; ++it) clients.push_back(it->second);
    gets_.erase(first, last);
    for (int c : clients) sinks_.value(c, key, value);
  }
  store_.insert_or_assign(std::move(key), std::move(value));
}

void KvRoot::get(int client, const std::string& key) {
  auto it = store_.find(key);
  if (it != store_.end())
    sinks_.value(client, key, it->second);
  else
    gets_.emplace(key, client);
}

void KvRoot::fence(int client, int rank) {
  if (rank < 0 || rank >= job_size_) return;
  auto r = static_cast<std::size_t>(rank);
  fence_clients_.insert(client);
  if (!fenced_[r] && !gone_[r]) --outstanding_;
  fenced_[r] = true;
  complete_fence_if_ready();
}

// A rank that ended cannot fence: the survivors' fences (the final one of a job run
// with --keep-going, above all) complete without it.
void KvRoot::rank_gone(int rank) {
  if (rank < 0 || rank >= job_size_) return;
  auto r = static_cast<std::size_t>(rank);
  if (gone_[r]) return;
  if (!fenced_[r]) --outstanding_;
  gone_[r] = true;
  if (!fence_clients_.empty()) complete_fence_if_ready();
}

void KvRoot::complete_fence_if_ready() {
  if (outstanding_ > 0) return;
  flush_reports();
  auto pairs = std::make_shared<std::vector<std::string>>();
  pairs->reserve(2 * store_.size());
  for (const auto& [k, v] : store_) {
    pairs->push_back(k);
    pairs->push_back(v);
  }
  auto clients = std::move(fence_clients_);
  fence_clients_.clear();
  std::fill(fenced_.begin(), fenced_.end(), false);
  outstanding_ = static_cast<int>(std::count(gone_.begin(), gone_.end(), false));
  ++fences_;
  for (int c : clients) sinks_.fenced(c, pairs);
}

void KvRoot::report(int rank, std::string line) { reports_.push_back({rank, std::move(line)}); }

void KvRoot::flush_reports() {
  std::stable_sort(reports_.begin(), reports_.end(), [](const Report& a, const Report& b) { return a.rank < b.rank; });
  auto lines = std::move(reports_);
  reports_.clear();
  for (auto& r : lines) sinks_.report(r.line);
}

void KvRoot::stop() {
  gets_.clear();
  fence_clients_.clear();
  flush_reports();
}

}  // namespace ipc::launcher
