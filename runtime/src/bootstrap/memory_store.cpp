#include "bootstrap/store.hpp"

#include "base/errors.hpp"

namespace ipc::bootstrap {

void MemoryStore::put(const std::string& key, const std::string& value) {
  {
    std::lock_guard lk(mu_);
    kv_[key] = value;
  }
  cv_.notify_all();
}

std::string MemoryStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return kv_.count(key) > 0; }))
    throw Timeout("bootstrap: key '" + key + "' did not appear within " + std::to_string(timeout.count()) + " ms");
  return kv_[key];
}

KeyValues MemoryStore::fence(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  auto gen = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
  } else if (timeout == std::chrono::milliseconds::max()) {
    cv_.wait(lk, [&] { return generation_ != gen; });
  } else if (!cv_.wait_for(lk, timeout, [&] { return generation_ != gen; })) {
    --arrived_;
    throw Timeout("bootstrap: timed out waiting for the other ranks at a fence");
  }
  return kv_;
}

}  // namespace ipc::bootstrap
