/// @file request.hpp
/// Handles of non-blocking operations.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ipc/status.hpp"

namespace ipc {

class Communicator;

namespace detail {
struct RequestState;
struct CommAccess;
/// A request's references (api/request.cpp).
void request_retain(RequestState* s) noexcept;
void request_unref(RequestState* s) noexcept;
}

/// A non-blocking send or receive in flight. Wait for it (or test it) before touching
/// its buffer again. Dropping a Request does not cancel the operation: it completes in
/// the background, and its buffer must stay valid until then.
class Request {
 public:
  /// An empty handle (valid() is false), e.g. to fill a vector for wait_any.
  Request() = default;
  Request(const Request& o) : s_(o.s_), now_(o.now_) {
    if (s_) detail::request_retain(s_);
  }
  Request(Request&& o) noexcept : s_(o.s_), now_(o.now_) {
    o.s_ = nullptr;
    o.now_ = Status{};
  }
  Request& operator=(const Request& o) {
    if (this != &o) {
      if (o.s_) detail::request_retain(o.s_);
      if (s_) release();
      s_ = o.s_;
      now_ = o.now_;
    }
    return *this;
  }
  Request& operator=(Request&& o) noexcept {
    if (this != &o) {
      if (s_) release();
      s_ = o.s_;
      now_ = o.now_;
      o.s_ = nullptr;
      o.now_ = Status{};
    }
    return *this;
  }
  ~Request() {
    if (s_) release();
  }
  /// Blocks until the operation completes; for a receive, the value is then in place.
  /// @throws the operation's failure (ipc::PeerLost when the peer is gone, ipc::Truncation when
  /// a received message does not fit), ipc::UsageError on an empty request.
  Status wait();
  /// Polls once; the status when the operation has completed.
  /// @throws as wait() when it failed; ipc::UsageError on an empty request.
  std::optional<Status> test();
  /// Whether this handle refers to an operation.
  bool valid() const { return s_ != nullptr || done_now(); }
  /// Whether the operation has completed (without making progress).
  bool done() const;

 private:
  friend class Communicator;  // isend, irecv
  friend std::size_t wait_any(std::span<Request> requests, Status* status);
  friend std::vector<std::size_t> wait_some(std::span<Request> requests, std::vector<Status>* statuses);
  friend struct detail::CommAccess;
  /// Takes over the reference `s` carries.
  explicit Request(detail::RequestState* s) : s_(s) {}
  /// An operation that completed as it started (a small send into shared memory).
  explicit Request(const Status& done) : now_(done) {}
  /// Lets go of the operation: one that has not completed keeps itself until it does.
  void release() noexcept;
  /// Empties the handle (wait_any, wait_some).
  void reset() {
    if (s_) detail::request_unref(s_);
    s_ = nullptr;
    now_ = Status{};
  }
  bool done_now() const { return now_.source >= 0; }
  detail::RequestState* s_ = nullptr;  // a counted reference (detail::RequestState::refs)
  Status now_{};  // its status (a rank, not -1) when it completed as it started; s_ is then null
};

/// Blocks until one of the valid requests completes; returns its index and resets that
/// handle, so that repeated calls drain a set. Returns requests.size() at once when no
/// handle is valid (the set is drained):
///
///     for (std::size_t i; (i = ipc::wait_any(rs)) != rs.size();) use(i);
///
/// @throws as Request::wait() for the one that completed (that handle is reset all the same).
std::size_t wait_any(std::span<Request> requests, Status* status = nullptr);
/// Blocks until at least one of the valid requests completes; returns the indices of
/// all that have completed by then, in order, and resets their handles (statuses in
/// `statuses`, by index, when given). Empty when no handle is valid.
/// @throws the first failure among them (as Request::wait()), after all of them were
/// taken and reset.
std::vector<std::size_t> wait_some(std::span<Request> requests, std::vector<Status>* statuses = nullptr);
/// Blocks until every valid request completes; statuses in the same order.
/// @throws the first failure (as Request::wait(), in the order of `requests`), after all have
/// completed. Empty handles are skipped (their status is a default Status).
std::vector<Status> wait_all(std::span<Request> requests);

}  // namespace ipc
