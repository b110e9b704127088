#include "ipc/request.hpp"

#include <utility>

#include "core/engine.hpp"
#include "base/errors.hpp"

namespace ipc {

namespace detail {
void request_retain(RequestState* s) noexcept { RequestState::retain(s); }
void request_unref(RequestState* s) noexcept { RequestState::unref(s); }
}  // namespace detail

Status Request::wait() {
  if (!s_) {
    if (done_now()) return now_;
    throw UsageError("wait on an empty request");
  }
  return s_->engine->wait(*s_);
}

std::optional<Status> Request::test() {
  if (!s_) {
    if (done_now()) return now_;
    throw UsageError("test on an empty request");
  }
  return s_->engine->test(*s_);
}

void Request::release() noexcept {
  auto* s = std::exchange(s_, nullptr);
  // An operation still running: the request keeps itself (this handle's reference)
  // until it completes, unless it already does (a copy of this handle was let go of
  // first: adopt() decides under the engine's lock).
  if (!s->done.load(std::memory_order_acquire) && !s->background) {
    try {
      if (s->engine->adopt(*s)) return;
    } catch (...) {  // adopt() takes the lock only: not reached
    }
  }
  detail::RequestState::unref(s);
}

bool Request::done() const { return s_ ? s_->done.load(std::memory_order_acquire) : done_now(); }

std::size_t wait_any(std::span<Request> requests, Status* status) {
  for (std::size_t i = 0; i < requests.size(); ++i)
    if (requests[i].done_now()) {  // completed as it started
      if (status) *status = requests[i].now_;
      requests[i].reset();
      return i;
    }
  std::vector<detail::RequestState*> rs;
  detail::Engine* engine = nullptr;
  for (auto& r : requests) {
    rs.push_back(r.s_);
    if (r.s_) engine = r.s_->engine;
  }
  if (!engine) return requests.size();
  std::size_t i = engine->wait_any(rs);
  detail::RequestRef s(std::exchange(requests[i].s_, nullptr));
  Status st = engine->wait(*s);
  if (status) *status = st;
  return i;
}

std::vector<std::size_t> wait_some(std::span<Request> requests, std::vector<Status>* statuses) {
  std::vector<detail::RequestState*> rs;
  detail::Engine* engine = nullptr;
  for (auto& r : requests) {
    rs.push_back(r.s_);
    if (r.s_) engine = r.s_->engine;
  }
  std::vector<std::size_t> done;
  bool any_now = false;
  for (auto& r : requests) any_now |= r.done_now();
  if (!engine && !any_now) return done;
  if (!any_now) engine->wait_any(rs);
  if (statuses) statuses->resize(requests.size());
  std::exception_ptr first;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].done_now()) {
      if (statuses) (*statuses)[i] = requests[i].now_;
      requests[i].reset();
      done.push_back(i);
      continue;
    }
    if (!requests[i].s_ || !requests[i].s_->done.load(std::memory_order_acquire)) continue;
    detail::RequestRef s(std::exchange(requests[i].s_, nullptr));
    done.push_back(i);
    try {
      Status st = engine->wait(*s);
      if (statuses) (*statuses)[i] = st;
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  return done;
}

std::vector<Status> wait_all(std::span<Request> requests) {
  std::vector<Status> out(requests.size());
  std::exception_ptr first;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].valid()) continue;
    try {
      out[i] = requests[i].wait();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  return out;
}

}  // namespace ipc
