/// @file communicator.hpp
/// Point-to-point messaging between the ranks of a job.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <optional>
#include <vector>
#include <span>
#include <type_traits>
#include <utility>

#include "ipc/detail/collectives.hpp"
#include "ipc/detail/transfer.hpp"
#include "ipc/request.hpp"
#include "ipc/status.hpp"
#include "ipc/value.hpp"

namespace ipc {

/// Reduction operations for the collectives (any stateless callable will do, as long
/// as it is associative and commutative: every rank gets bitwise the same result).
namespace op {
using sum = std::plus<>;
using prod = std::multiplies<>;
/// The smaller of two values (`a` when they are equal).
struct min {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};
/// The larger of two values (`a` when they are equal).
struct max {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
}  // namespace op

namespace detail {
// inout[i] = op(inout[i], in[i]); the buffers do not overlap. Four elements per round,
// all read before any is written: independent operations in flight, which the
// compiler may also pack into vector instructions, and a loop whose speed does not
// hang on where it lands in the program's code (a one-element loop measured 15%
// apart between two builds of the same source).
template <class T, class Op>
void apply_reduction(void* inout, const void* in, std::size_t n) {
  auto* a = static_cast<T*>(inout);
  auto* b = static_cast<const T*>(in);
  Op f{};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    T x0 = f(a[i], b[i]), x1 = f(a[i + 1], b[i + 1]), x2 = f(a[i + 2], b[i + 2]), x3 = f(a[i + 3], b[i + 3]);
    a[i] = x0;
    a[i + 1] = x1;
    a[i + 2] = x2;
    a[i + 3] = x3;
  }
  for (; i < n; ++i) a[i] = f(a[i], b[i]);
}
template <class T, class Op>
Reduction reduction() {
  static_assert(std::is_default_constructible_v<Op>, "ipc: a reduction must be a stateless callable");
  return {&apply_reduction<T, Op>, sizeof(T)};
}
}  // namespace detail

namespace detail {

class Engine;
struct RequestState;
struct CommAccess;

// The typed API's way into the compiled engine (api/communicator.cpp).
std::shared_ptr<RequestState> post_send(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src);
std::shared_ptr<RequestState> post_recv(Engine& e, std::uint32_t comm, int source, int tag, RecvTarget dst);
/// Blocking forms: return when done, allocate nothing.
Status send_wait(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src);
/// `dst` is used in place (it outlives the call): no copy on the way of a message.
Status recv_wait(Engine& e, std::uint32_t comm, int source, int tag, const RecvTarget& dst);

}  // namespace detail

class Communicator;

namespace detail {

/// The element type of a range, without const.
template <class R>
using elem_t = std::remove_cv_t<std::ranges::range_value_t<R>>;
/// A RawRange whose elements may be written (not a span of const, not a const vector).
template <class R>
concept WritableRawRange = RawRange<R> && !std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>>;

enum class Purpose : std::uint32_t;  // core/context.hpp

/// What the library's own layers (the runtime's start-up, rpc, the farm) do with a
/// communicator beyond its public calls: the engine services they are built on.
/// Not for programs.
struct CommAccess {
  static Communicator make(Engine& engine, const CollShared* shared, std::uint32_t context, int rank, int size);
  /// The same ranks on a fresh private context of `purpose`. Collective: every rank
  /// takes its contexts in the same order.
  static Communicator fresh(const Communicator& c, Purpose purpose);
  /// Receives a message of any size into `into` (resized to it); the request keeps
  /// `into` alive, so a handle dropped early leaves nothing dangling.
  static Request irecv_bytes(const Communicator& c, int source, Tag tag, std::shared_ptr<std::vector<std::byte>> into);
  /// Withdraws a receive that has not matched yet (one that has is waited for).
  static void cancel(Request& r);
  /// "rank 3 on node2": for messages.
  static std::string where(const Communicator& c, int rank);
  /// Waits by the job's wait policy (polling, yielding, then asleep on the rank's
  /// doorbell) until `done()` or `deadline`; true when done() held.
  static bool wait_until(const Communicator& c, const std::function<bool()>& done,
                         std::chrono::steady_clock::time_point deadline);
};

}  // namespace detail

/// A group of ranks that exchange messages. Messages from one rank to another with
/// the same tag arrive in the order they were sent; a rank may send to itself.
///
/// Values (see value.hpp): arithmetic types and trivially copyable structs, contiguous
/// ranges of them (std::vector, std::string, std::span, std::array) travel as raw
/// bytes, without a copy on send; any other Cereal-serializable type is serialized.
class Communicator {
 public:
  /// Communicators come from the Runtime (world()); copies refer to the same ranks
  /// and context.
  Communicator(const Communicator&) = default;
  Communicator& operator=(const Communicator&) = default;

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
  /// @throws ipc::UsageError for a bad rank or tag; a lost dest fails the request (wait() throws
  /// ipc::PeerLost).
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
  /// match it exactly.
  /// @throws ipc::UsageError for a bad rank or tag, ipc::PeerLost when source is gone,
  /// ipc::Truncation when the message does not fit (or does not deserialize as T).
  template <class T>
  Status recv(T& value, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return detail::recv_wait(*engine_, context_, source, tag.value, detail::recv_target(value));
  }
  /// Receives into a caller-provided span; Status::bytes tells how much arrived.
  /// @throws ipc::UsageError for a bad rank or tag, ipc::PeerLost when source is gone,
  /// ipc::Truncation when the message is larger than the span.
  template <class E, std::size_t N>
  Status recv(std::span<E, N> buffer, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return detail::recv_wait(*engine_, context_, source, tag.value, detail::recv_target(buffer));
  }
  /// Receives and returns a value of type T: `auto v = comm.recv<std::vector<int>>(0);`
  /// @throws as recv(value, source, tag).
  template <class T>
  T recv(int source = any_source, Tag tag = any_tag, Status* status = nullptr) const {
    T value{};
    Status st = recv(value, source, tag);
    if (status) *status = st;
    return value;
  }

  /// Starts receiving into `value`; it is in place when the request completes.
  /// @throws ipc::UsageError for a bad rank or tag; ipc::PeerLost (source gone) and
  /// ipc::Truncation (message does not fit) come from the request's wait() or test().
  template <class T>
  Request irecv(T& value, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return Request(detail::post_recv(*engine_, context_, source, tag.value, detail::recv_target(value)));
  }
  /// Starts receiving into a caller-provided span (keep it alive until the request completes).
  /// @throws as irecv(value, source, tag).
  template <class E, std::size_t N>
  Request irecv(std::span<E, N> buffer, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    return Request(detail::post_recv(*engine_, context_, source, tag.value, detail::recv_target(buffer)));
  }

  /// Sends `out` to `dest` and receives `in` from `source` at once (no deadlock when
  /// every rank does it).
  /// @throws ipc::UsageError for a bad rank or tag, ipc::PeerLost when dest or source is
  /// gone, ipc::Truncation when the received message does not fit `in`.
  template <class S, class R>
  Status sendrecv(const S& out, int dest, Tag send_tag, R& in, int source, Tag recv_tag = any_tag) const {
    Request r = irecv(in, source, recv_tag);
    try {
      Request s = isend(out, dest, send_tag);
      s.wait();
    } catch (...) {
      detail::CommAccess::cancel(r);  // `in` is the caller's: nothing may land there after this
      throw;
    }
    return r.wait();
  }

  /// Blocks until a matching message is there; returns its status without receiving it.
  /// @throws ipc::UsageError for a bad tag, ipc::PeerLost when source (not any_source) is gone.
  Status probe(int source = any_source, Tag tag = any_tag) const;
  /// The status of a matching message if one is there now.
  /// @throws ipc::UsageError for a bad tag.
  std::optional<Status> iprobe(int source = any_source, Tag tag = any_tag) const;

  // ---- Communicators: made collectively by every rank of this one ----

  /// The ranks that pass the same `color` (0 or more) form a new communicator,
  /// ordered by `key`, then by their rank here. Messages and collectives on it never
  /// mix with this one's, nor with other colors'.
  /// @throws ipc::UsageError for a negative color, ipc::PeerLost when a rank is gone.
  Communicator split(int color, int key = 0) const;
  /// The same ranks, with traffic of its own (a library's private communicator).
  Communicator dup() const;
  /// The listed ranks (of this communicator), in the list's order, as a communicator;
  /// every rank passes the same list, and those not in it get std::nullopt.
  /// @throws ipc::UsageError for a rank out of range, listed twice, or lists that
  /// differ between ranks.
  std::optional<Communicator> subset(std::span<const int> ranks) const;
  std::optional<Communicator> subset(std::initializer_list<int> ranks) const {
    return subset(std::span<const int>(ranks.begin(), ranks.size()));
  }
  /// The ranks of this communicator that run on this rank's node, in rank order.
  Communicator split_by_node() const;

  // ---- Collectives: every rank calls them, in the same order, with the same sizes ----

  /// Returns once every rank has called it.
  /// @throws ipc::PeerLost when a rank of the communicator is gone.
  void barrier() const;

  /// `value` of `root` ends up on every rank. A std::vector or std::string is resized;
  /// a Cereal-serializable value is serialized at the root.
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone, ipc::ProtocolError
  /// when ranks pass values of other sizes, ipc::Truncation when the root's value does not
  /// deserialize as T.
  template <class T>
  void bcast(T& value, int root) const {
    check_root(root, "bcast");
    using V = std::remove_cv_t<T>;
    if constexpr (detail::is_resizable<V>::value) {
      std::uint64_t n = rank_ == root ? value.size() : 0;
      detail::coll_bcast(coll(), &n, sizeof n, root);
      if (rank_ != root) value.resize(n);
      detail::coll_bcast(coll(), std::ranges::data(value), n * sizeof(typename V::value_type), root);
    } else if constexpr (RawValue<V>) {
      detail::coll_bcast(coll(), &value, sizeof(V), root);
    } else {
      std::vector<std::byte> bytes;
      if (rank_ == root) bytes = std::move(*detail::serialize(value));
      bcast(bytes, root);
      if (rank_ != root) detail::deserialize_or_throw(bytes, value);
    }
  }

  /// op over every rank's `value`, on every rank: `comm.allreduce(x)` sums,
  /// `comm.allreduce(x, ipc::op::max{})` takes the maximum.
  /// @throws ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass other types.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  T allreduce(const T& value, Op = {}) const {
    T out = value;
    detail::coll_allreduce(coll(), &out, 1, detail::reduction<T, Op>());
    return out;
  }
  /// Element by element over every rank's vector (all of one length).
  /// @throws ipc::PeerLost when a rank is gone, ipc::ProtocolError when the lengths differ.
  template <class T, class Op = op::sum>
    requires RawValue<T>
  std::vector<T> allreduce(const std::vector<T>& values, Op = {}) const {
    std::vector<T> out = values;
    detail::coll_allreduce(coll(), out.data(), out.size(), detail::reduction<T, Op>());
    return out;
  }
  /// In place, element by element, over any contiguous range (a std::vector, a
  /// std::span, a std::array...).
  /// @throws ipc::PeerLost when a rank is gone, ipc::ProtocolError when the lengths differ.
  template <detail::WritableRawRange R, class Op = op::sum>
  void allreduce_inplace(R&& values, Op = {}) const {
    using T = detail::elem_t<R>;
    detail::coll_allreduce(coll(), std::ranges::data(values), std::ranges::size(values), detail::reduction<T, Op>());
  }
  /// op over every rank's `value`, on `root`; other ranks get T{} (the result is the
  /// root's only, as the vector form's is).
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when ranks pass other types.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  T reduce(const T& value, int root, Op = {}) const {
    check_root(root, "reduce");
    T out = value;
    detail::coll_reduce(coll(), &out, 1, detail::reduction<T, Op>(), root);
    return rank_ == root ? out : T{};
  }
  /// Element-wise op over every rank's `values` (the same length everywhere), on
  /// `root`; other ranks get an empty vector.
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when the lengths differ.
  template <class T, class Op = op::sum>
    requires RawValue<T>
  std::vector<T> reduce(const std::vector<T>& values, int root, Op = {}) const {
    check_root(root, "reduce");
    std::vector<T> out = values;
    detail::coll_reduce(coll(), out.data(), out.size(), detail::reduction<T, Op>(), root);
    if (rank_ != root) out.clear();
    return out;
  }
  /// Every rank's `value`, in rank order, on every rank.
  /// @throws ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass other types.
  template <class T>
    requires RawValue<T>
  std::vector<T> allgather(const T& value) const {
    std::vector<T> out(static_cast<std::size_t>(size_));
    detail::coll_allgather(coll(), &value, sizeof(T), out.data());
    return out;
  }
  /// Every rank's `value`, in rank order, on `root` (empty elsewhere).
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when ranks pass other types.
  template <class T>
    requires RawValue<T>
  std::vector<T> gather(const T& value, int root) const {
    check_root(root, "gather");
    std::vector<T> out(rank_ == root ? static_cast<std::size_t>(size_) : 0);
    detail::coll_gather(coll(), &value, sizeof(T), out.data(), root);
    return out;
  }
  /// Blocks of in.size() elements from every rank into `out` (size() blocks, in rank order).
  /// @throws ipc::UsageError unless out.size() == size() * in.size(), ipc::PeerLost when a rank
  /// is gone, ipc::ProtocolError when ranks pass blocks of other sizes.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void allgather(const In& in, Out&& out) const {
    using T = detail::elem_t<In>;
    check_blocks(std::ranges::size(in), std::ranges::size(out), "allgather");
    detail::coll_allgather(coll(), std::ranges::data(in), std::ranges::size(in) * sizeof(T), std::ranges::data(out));
  }
  /// Blocks of in.size() elements from every rank into the root's `out` (size()
  /// blocks, in rank order); `out` is not used on other ranks.
  /// @throws ipc::UsageError for a bad root or (on the root) unless out.size() == size() * in.size(),
  /// ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass blocks of other sizes.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void gather(const In& in, Out&& out, int root) const {
    using T = detail::elem_t<In>;
    check_root(root, "gather");
    if (rank_ == root) check_blocks(std::ranges::size(in), std::ranges::size(out), "gather");
    detail::coll_gather(coll(), std::ranges::data(in), std::ranges::size(in) * sizeof(T), std::ranges::data(out), root);
  }
  /// Block i of `in` (in.size()/size() elements) goes to rank i; block j of `out`
  /// came from rank j. `in` and `out` must not overlap.
  /// @throws ipc::UsageError unless in.size() == out.size() and both are a multiple of size(),
  /// ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass blocks of other sizes.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void alltoall(const In& in, Out&& out) const {
    using T = detail::elem_t<In>;
    std::size_t n = std::ranges::size(in), m = std::ranges::size(out);
    if (n != m || n % static_cast<std::size_t>(size_) != 0) alltoall_sizes(n, m);
    detail::coll_alltoall(coll(), std::ranges::data(in), n * sizeof(T) / static_cast<std::size_t>(size_),
                          std::ranges::data(out));
  }
  /// The root's buffer into every rank's buffer of the same size.
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when the buffers' sizes differ.
  template <class T, std::size_t N>
    requires RawValue<std::remove_const_t<T>>
  void bcast(std::span<T, N> buffer, int root) const {
    check_root(root, "bcast");
    detail::coll_bcast(coll(), buffer.data(), buffer.size_bytes(), root);
  }

  /// values[i] goes to rank i; the result's element j came from rank j.
  /// @throws ipc::UsageError unless values.size() == size(), ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when ranks pass other types.
  template <class T>
    requires RawValue<T>
  std::vector<T> alltoall(const std::vector<T>& values) const {
    check_count(values.size(), "alltoall");
    std::vector<T> out(values.size());
    detail::coll_alltoall(coll(), values.data(), sizeof(T), out.data());
    return out;
  }

 private:
  friend struct detail::CommAccess;
  Communicator(detail::Engine& engine, const detail::CollShared* shared, std::uint32_t context, int rank, int size);
  detail::CollContext coll() const { return {engine_, shared_, coll_context_, rank_, size_}; }
  Communicator derive(detail::Purpose purpose, const std::vector<int>* job_ranks, int rank = -1) const;
  void check_root(int root, const char* op) const;
  void check_count(std::size_t n, const char* op) const;
  void check_blocks(std::size_t in, std::size_t out, const char* op) const;
  [[noreturn]] void alltoall_sizes(std::size_t in, std::size_t out) const;

  static void check_tag(Tag tag, const char* op);
  static void check_recv_tag(Tag tag);

  detail::Engine* engine_;
  const detail::CollShared* shared_;
  std::uint32_t context_;
  std::uint32_t coll_context_;  // collectives travel apart from the program's messages
  int rank_;
  int size_;
};

}  // namespace ipc
