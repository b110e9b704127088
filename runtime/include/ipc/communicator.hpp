/// @file communicator.hpp
/// Point-to-point messaging between the ranks of a job.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "ipc/detail/transfer.hpp"
#include "ipc/request.hpp"
#include "ipc/status.hpp"
#include "ipc/value.hpp"

namespace ipc {

/// A group of ranks that exchange messages. Messages from one rank to another with
/// the same tag arrive in the order they were sent; a rank may send to itself.
///
/// Values (see value.hpp): arithmetic types and trivially copyable structs, contiguous
/// ranges of them (std::vector, std::string, std::span, std::array) travel as raw
/// bytes, without a copy on send; any other Cereal-serializable type is serialized.
class Communicator {
 public:
  Communicator(detail::Engine& engine, std::uint32_t context, int rank, int size)
      : engine_(&engine), context_(context), rank_(rank), size_(size) {}

  /// This rank's number, 0 to size()-1.
  int rank() const { return rank_; }
  /// The number of ranks.
  int size() const { return size_; }

  /// Sends `value` to `dest`; returns when `value` may be reused.
  /// @throws ipc::UsageError for a bad rank or tag, ipc::PeerLost when dest is gone.
  template <Sendable T>
  void send(const T& value, int dest, Tag tag = Tag{0}) const {
    check_tag(tag, "send");
    detail::send_wait(*engine_, context_, dest, tag.value, detail::send_source(value));
  }

  /// Starts sending `value` to `dest`. An lvalue is sent from where it is (keep it
  /// alive and unchanged until the request completes); an rvalue is moved into the
  /// request.
  template <class T>
    requires Sendable<std::remove_cvref_t<T>>
  Request isend(T&& value, int dest, Tag tag = Tag{0}) const {
    check_tag(tag, "send");
    if constexpr (std::is_lvalue_reference_v<T>)
      return Request(detail::post_send(*engine_, context_, dest, tag.value, detail::send_source(value)));
    else
      return Request(detail::post_send(*engine_, context_, dest, tag.value,
                                       detail::send_source_owned(std::forward<T>(value))));
  }

  /// Receives into `value` from `source` (or any_source) with `tag` (or any_tag).
  /// A std::vector or std::string is resized to the message; a fixed-size value must
  /// match it exactly. @throws ipc::Truncation when the message does not fit.
  template <class T>
  Status recv(T& value, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return detail::recv_wait(*engine_, context_, source, tag.value, detail::recv_target(value));
  }
  /// Receives into a caller-provided span; Status::bytes tells how much arrived.
  template <class E, std::size_t N>
  Status recv(std::span<E, N> buffer, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return detail::recv_wait(*engine_, context_, source, tag.value, detail::recv_target(buffer));
  }
  /// Receives and returns a value of type T: `auto v = comm.recv<std::vector<int>>(0);`
  template <class T>
  T recv(int source = any_source, Tag tag = any_tag, Status* status = nullptr) const {
    T value{};
    Status st = recv(value, source, tag);
    if (status) *status = st;
    return value;
  }

  /// Starts receiving into `value`; it is in place when the request completes.
  template <class T>
  Request irecv(T& value, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return Request(detail::post_recv(*engine_, context_, source, tag.value, detail::recv_target(value)));
  }
  template <class E, std::size_t N>
  Request irecv(std::span<E, N> buffer, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return Request(detail::post_recv(*engine_, context_, source, tag.value, detail::recv_target(buffer)));
  }

  /// Sends `out` to `dest` and receives `in` from `source` at once (no deadlock when
  /// every rank does it).
  template <class S, class R>
  Status sendrecv(const S& out, int dest, Tag send_tag, R& in, int source, Tag recv_tag = any_tag) const {
    Request r = irecv(in, source, recv_tag);
    Request s = isend(out, dest, send_tag);
    s.wait();
    return r.wait();
  }

  /// Blocks until a matching message is there; returns its status without receiving it.
  Status probe(int source = any_source, Tag tag = any_tag) const;
  /// The status of a matching message if one is there now.
  std::optional<Status> iprobe(int source = any_source, Tag tag = any_tag) const;

  detail::Engine& engine() const { return *engine_; }
  std::uint32_t context() const { return context_; }

 private:
  static void check_tag(Tag tag, const char* op);
  static void check_recv_tag(Tag tag);

  detail::Engine* engine_;
  std::uint32_t context_;
  int rank_;
  int size_;
};

}  // namespace ipc
