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
/// Logical and, or, exclusive or: the result is 1 or 0 (of T), once two values meet.
struct land {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(a && b);
  }
};
struct lor {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(a || b);
  }
};
struct lxor {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(!a != !b);
  }
};
/// Bitwise and, or, exclusive or (integers).
struct band {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(a & b);
  }
};
struct bor {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(a | b);
  }
};
struct bxor {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return static_cast<T>(a ^ b);
  }
};
}  // namespace op

/// A value and where it came from, for op::minloc and op::maxloc:
/// `comm.allreduce(ipc::Loc<double>{err, comm.rank()}, ipc::op::maxloc{})` gives the
/// largest error and the rank that has it.
template <class T>
struct Loc {
  T value;
  int rank;
  friend constexpr bool operator==(const Loc&, const Loc&) = default;
};

namespace op {
/// The smallest value, and with it the lowest rank among those that hold it.
struct minloc {
  template <class T>
  constexpr Loc<T> operator()(const Loc<T>& a, const Loc<T>& b) const {
    if (b.value < a.value || (!(a.value < b.value) && b.rank < a.rank)) return b;
    return a;
  }
};
/// The largest value, and with it the lowest rank among those that hold it.
struct maxloc {
  template <class T>
  constexpr Loc<T> operator()(const Loc<T>& a, const Loc<T>& b) const {
    if (a.value < b.value || (!(b.value < a.value) && b.rank < a.rank)) return b;
    return a;
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
// Which of the library's kernels (collectives/kernels.cpp) does Op, if any.
template <class Op>
constexpr int builtin_op() {
  if constexpr (std::is_same_v<Op, op::sum>) return static_cast<int>(ReduceOp::sum);
  else if constexpr (std::is_same_v<Op, op::prod>) return static_cast<int>(ReduceOp::prod);
  else if constexpr (std::is_same_v<Op, op::min>) return static_cast<int>(ReduceOp::min);
  else if constexpr (std::is_same_v<Op, op::max>) return static_cast<int>(ReduceOp::max);
  else if constexpr (std::is_same_v<Op, op::band>) return static_cast<int>(ReduceOp::band);
  else if constexpr (std::is_same_v<Op, op::bor>) return static_cast<int>(ReduceOp::bor);
  else if constexpr (std::is_same_v<Op, op::bxor>) return static_cast<int>(ReduceOp::bxor);
  else return -1;
}
// A built-in operation on a number takes the library's kernel, vectorized for the CPU
// the program runs on (a loop instantiated here is built with the program's flags:
// element by element for chars at -O2, 7x slower than the kernel at 64 KiB); anything
// else, the loop above.
template <class T, class Op>
Reduction reduction() {
  static_assert(std::is_default_constructible_v<Op>, "ipc: a reduction must be a stateless callable");
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && sizeof(T) <= 8 && builtin_op<Op>() >= 0) {
    constexpr auto kind = std::is_floating_point_v<T> ? ReduceKind::floating
                          : std::is_signed_v<T>       ? ReduceKind::signed_int
                                                      : ReduceKind::unsigned_int;
    if (ReduceFn f = builtin_reduction(static_cast<ReduceOp>(builtin_op<Op>()), kind, sizeof(T)))
      return {f, sizeof(T)};
  }
  return {&apply_reduction<T, Op>, sizeof(T)};
}
}  // namespace detail

namespace detail {

class Engine;
struct RequestState;
struct CommAccess;

// The typed API's way into the compiled engine (api/communicator.cpp).
/// Null when the send completed at once (its status then in *done_now).
/// The request carries one reference, the caller's (ipc::Request takes it over).
RequestState* post_send(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src, Status* done_now);
/// A send of `size` bytes at `data` that leaves at once, without a request (true: its
/// status is {dest, tag, size}); false when nothing was sent.
bool send_raw_now(Engine& e, std::uint32_t comm, int dest, int tag, const void* data, std::size_t size);
RequestState* post_recv(Engine& e, std::uint32_t comm, int source, int tag, RecvTarget&& dst);
/// The same into `bytes` at `data` (`exact`: a message of other size fails).
RequestState* post_recv_raw(Engine& e, std::uint32_t comm, int source, int tag, void* data, std::size_t bytes,
                            bool exact);
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

/// Counts and displacements of a v-collective's blocks, in bytes.
struct Layout {
  std::vector<std::size_t> bytes;
  std::vector<std::size_t> displs;
};
[[noreturn]] void throw_lengths_differ(const char* op, std::size_t mine, std::size_t theirs);

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
  /// Receives a message of any size into `into` (resized to it) and returns when it is
  /// there: no request on the heap, none shared.
  static Status recv_bytes(const Communicator& c, int source, Tag tag, std::vector<std::byte>& into);
  /// Sends `bytes`: when the message leaves at once, `bytes` stays the caller's (to
  /// use again); otherwise the request takes it (moved from).
  static Request isend_reusing(const Communicator& c, std::vector<std::byte>& bytes, int dest, Tag tag);
  /// Withdraws a receive that has not matched yet (one that has is waited for).
  static void cancel(Request& r);
  /// The calling thread serves peers' requests (Engine::poll_for_peers_on_this_thread).
  static void poll_for_peers_on_this_thread();
  /// "rank 3 on node2": for messages.
  static std::string where(const Communicator& c, int rank);
  /// The job's id (names of its shared segments) and a rank's number in the job.
  static const std::string& job(const Communicator& c);
  static int job_rank(const Communicator& c, int rank);
  /// Whether `rank` is gone (the transports look now).
  static bool gone(const Communicator& c, int rank);
  /// A barrier that no rank is made to leave first (a window's fence: what follows is
  /// every rank's alike), where barrier() lets rank 0 leave first on a node with more
  /// ranks than CPUs.
  static void symmetric_barrier(const Communicator& c);
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
    using V = std::remove_cvref_t<T>;
    Status now;
    Status* try_now = &now;
    // Raw bytes first try to leave from where they are, with nothing built around them
    // (a temporary too: it lives through this call); only a send that must wait gets a
    // request (and an rvalue's bytes moved into it).
    if constexpr (RawRange<V> || RawValue<V>) {
      auto [p, n] = detail::raw_bytes(value);
      if (detail::send_raw_now(*engine_, context_, dest, tag.value, p, n)) return Request(Status{dest, tag, n});
      try_now = nullptr;
    }
    detail::RequestState* s;
    if constexpr (std::is_lvalue_reference_v<T>)
      s = detail::post_send(*engine_, context_, dest, tag.value, detail::send_source(value), try_now);
    else
      s = detail::post_send(*engine_, context_, dest, tag.value, detail::send_source_owned(std::forward<T>(value)),
                            try_now);
    return s ? Request(s) : Request(now);
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
    if constexpr (detail::is_span<std::remove_cv_t<T>>::value) {
      return irecv(value, source, tag);  // the span overload
    } else if constexpr (detail::raw_target_v<T>) {
      static_assert(!std::is_const_v<T>, "ipc: cannot receive into a const object");
      return Request(detail::post_recv_raw(*engine_, context_, source, tag.value, &value, sizeof(T), true));
    } else {
      return Request(detail::post_recv(*engine_, context_, source, tag.value, detail::recv_target(value)));
    }
  }
  /// Starts receiving into a caller-provided span (keep it alive until the request completes).
  /// @throws as irecv(value, source, tag).
  template <class E, std::size_t N>
  Request irecv(std::span<E, N> buffer, int source, Tag tag = any_tag) const {
    check_recv_tag(tag);
    static_assert(!std::is_const_v<E>, "ipc: cannot receive into a const object");
    return Request(detail::post_recv_raw(*engine_, context_, source, tag.value, buffer.data(), buffer.size_bytes(), false));
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

  /// Element by element over every rank's `values`, in place on `root`; on the other
  /// ranks `values` stays as it was.
  /// @throws ipc::UsageError for a bad root, ipc::PeerLost when a rank is gone,
  /// ipc::ProtocolError when the lengths differ.
  template <detail::WritableRawRange R, class Op = op::sum>
  void reduce_inplace(R&& values, int root, Op = {}) const {
    using T = detail::elem_t<R>;
    check_root(root, "reduce");
    std::span<T> v(std::ranges::data(values), std::ranges::size(values));
    if (rank_ == root) {
      detail::coll_reduce(coll(), v.data(), v.size(), detail::reduction<T, Op>(), root);
    } else {
      std::vector<T> scratch(v.begin(), v.end());  // the tree accumulates in it
      detail::coll_reduce(coll(), scratch.data(), scratch.size(), detail::reduction<T, Op>(), root);
    }
  }

  /// op over every rank's `value` of any serializable type, with any callable (which
  /// may hold state): `comm.allreduce(histogram, merge)` for a struct with a map.
  /// When `value` is a vector and `op` takes its elements, element by element (all
  /// vectors of one length). The values travel serialized, along a tree to rank 0
  /// and back: use the raw forms above for numbers.
  /// @throws ipc::PeerLost when a rank is gone, ipc::Truncation when a rank's bytes do not
  /// deserialize as T, ipc::ProtocolError when vectors' lengths differ.
  template <class T, class Op>
    requires(!RawValue<T>) && (!RawRange<T>) && SerializableValue<T>
  T allreduce(const T& value, Op op) const {
    T out = reduce_serialized(value, 0, op);
    bcast(out, 0);
    return out;
  }
  /// The same on `root` only (other ranks get T{}).
  /// @throws as allreduce, and ipc::UsageError for a bad root.
  template <class T, class Op>
    requires(!RawValue<T>) && (!RawRange<T>) && SerializableValue<T>
  T reduce(const T& value, int root, Op op) const {
    check_root(root, "reduce");
    return reduce_serialized(value, root, op);
  }

  /// Block i of the root's `in` (out.size() elements each) goes to rank i's `out`;
  /// `in` is read on the root only.
  /// @throws ipc::UsageError for a bad root or (on the root) unless in.size() == size() *
  /// out.size(), ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass
  /// blocks of other sizes.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void scatter(const In& in, Out&& out, int root) const {
    using T = detail::elem_t<In>;
    check_root(root, "scatter");
    if (rank_ == root) check_blocks(std::ranges::size(out), std::ranges::size(in), "scatter");
    detail::coll_scatter(coll(), std::ranges::data(in), std::ranges::size(out) * sizeof(T), std::ranges::data(out),
                         root);
  }
  /// The root's values[i] goes to rank i (values is read on the root only).
  /// @throws ipc::UsageError for a bad root or (on the root) unless values.size() == size().
  template <class T>
    requires RawValue<T>
  T scatter(const std::vector<T>& values, int root) const {
    check_root(root, "scatter");
    if (rank_ == root) check_count(values.size(), "scatter");
    T out{};
    detail::coll_scatter(coll(), values.data(), sizeof(T), &out, root);
    return out;
  }

  /// Every rank's `in` (its own length) into the root's `out`, in rank order:
  /// counts[i] elements from rank i. `counts` and `out` are read on the root only.
  /// @throws ipc::UsageError for a bad root or (on the root) counts that do not match
  /// size(), its own in.size() or out.size(); ipc::ProtocolError when a rank's length is
  /// not its count.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void gatherv(const In& in, Out&& out, std::span<const std::size_t> counts, int root) const {
    using T = detail::elem_t<In>;
    check_root(root, "gatherv");
    detail::Layout l;
    if (rank_ == root) l = layout(counts, sizeof(T), std::ranges::size(in), std::ranges::size(out), "gatherv");
    detail::coll_gatherv(coll(), std::ranges::data(in), std::ranges::size(in) * sizeof(T), std::ranges::data(out),
                         l.bytes.data(), l.displs.data(), root);
  }
  /// Every rank's `in` (any lengths), one after the other in rank order, on the root
  /// (an empty vector elsewhere); `counts`, if given, gets the lengths on the root.
  template <RawRange In>
  std::vector<detail::elem_t<In>> gatherv(const In& in, int root, std::vector<std::size_t>* counts = nullptr) const {
    check_root(root, "gatherv");
    auto n = gather(static_cast<std::uint64_t>(std::ranges::size(in)), root);
    std::vector<std::size_t> c(n.begin(), n.end());
    std::vector<detail::elem_t<In>> out(rank_ == root ? total(c) : 0);
    gatherv(in, out, c, root);
    if (counts) *counts = std::move(c);
    return out;
  }

  /// counts[i] elements of the root's `in`, one block after the other, go to rank i's
  /// `out` (whose length is its count). `in` and `counts` are read on the root only.
  /// @throws ipc::UsageError for a bad root or (on the root) counts that do not match
  /// size(), in.size() or its own out.size(); ipc::ProtocolError when a rank's out.size()
  /// is not its count.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void scatterv(const In& in, std::span<const std::size_t> counts, Out&& out, int root) const {
    using T = detail::elem_t<In>;
    check_root(root, "scatterv");
    detail::Layout l;
    if (rank_ == root) l = layout(counts, sizeof(T), std::ranges::size(out), std::ranges::size(in), "scatterv");
    detail::coll_scatterv(coll(), std::ranges::data(in), l.bytes.data(), l.displs.data(), std::ranges::data(out),
                          std::ranges::size(out) * sizeof(T), root);
  }
  /// The same, each rank's block returned (the counts travel first).
  template <RawRange In>
  std::vector<detail::elem_t<In>> scatterv(const In& in, std::span<const std::size_t> counts, int root) const {
    check_root(root, "scatterv");
    std::vector<std::uint64_t> c64;
    if (rank_ == root) {
      check_count(counts.size(), "scatterv");
      c64.assign(counts.begin(), counts.end());
    }
    std::vector<detail::elem_t<In>> out(static_cast<std::size_t>(scatter(c64, root)));
    scatterv(in, counts, out, root);
    return out;
  }

  /// Every rank's `in` into every rank's `out`, in rank order: counts[i] elements from
  /// rank i (every rank passes the same counts).
  /// @throws ipc::UsageError for counts that do not match size(), in.size() or out.size(),
  /// ipc::PeerLost when a rank is gone, ipc::ProtocolError when a rank's length is not its count.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void allgatherv(const In& in, Out&& out, std::span<const std::size_t> counts) const {
    using T = detail::elem_t<In>;
    detail::Layout l = layout(counts, sizeof(T), std::ranges::size(in), std::ranges::size(out), "allgatherv");
    detail::coll_allgatherv(coll(), std::ranges::data(in), std::ranges::size(in) * sizeof(T), std::ranges::data(out),
                            l.bytes.data(), l.displs.data());
  }
  /// Every rank's `in` (any lengths), one after the other in rank order, on every
  /// rank; `counts`, if given, gets the lengths.
  template <RawRange In>
  std::vector<detail::elem_t<In>> allgatherv(const In& in, std::vector<std::size_t>* counts = nullptr) const {
    auto n = allgather(static_cast<std::uint64_t>(std::ranges::size(in)));
    std::vector<std::size_t> c(n.begin(), n.end());
    std::vector<detail::elem_t<In>> out(total(c));
    allgatherv(in, out, c);
    if (counts) *counts = std::move(c);
    return out;
  }

  /// send_counts[i] elements of `in` (blocks one after the other) go to rank i;
  /// recv_counts[j] elements from rank j land in `out`, one block after the other.
  /// @throws ipc::UsageError for counts that do not match size() or the lengths of `in` and
  /// `out`, ipc::PeerLost when a rank is gone, ipc::ProtocolError when a sender's count is
  /// not its receiver's.
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void alltoallv(const In& in, std::span<const std::size_t> send_counts, Out&& out,
                 std::span<const std::size_t> recv_counts) const {
    using T = detail::elem_t<In>;
    detail::Layout s = layout(send_counts, sizeof(T), npos, std::ranges::size(in), "alltoallv (send counts)");
    detail::Layout r = layout(recv_counts, sizeof(T), npos, std::ranges::size(out), "alltoallv (receive counts)");
    detail::coll_alltoallv(coll(), std::ranges::data(in), s.bytes.data(), s.displs.data(), std::ranges::data(out),
                           r.bytes.data(), r.displs.data());
  }
  /// The same, the received blocks returned (the counts travel first); `recv_counts`,
  /// if given, gets how many came from each rank.
  template <RawRange In>
  std::vector<detail::elem_t<In>> alltoallv(const In& in, std::span<const std::size_t> send_counts,
                                            std::vector<std::size_t>* recv_counts = nullptr) const {
    check_count(send_counts.size(), "alltoallv");
    auto n = alltoall(std::vector<std::uint64_t>(send_counts.begin(), send_counts.end()));
    std::vector<std::size_t> c(n.begin(), n.end());
    std::vector<detail::elem_t<In>> out(total(c));
    alltoallv(in, send_counts, out, c);
    if (recv_counts) *recv_counts = std::move(c);
    return out;
  }

  /// Element by element over every rank's `in` (size() blocks of out.size()
  /// elements); block i of the result lands in rank i's `out`.
  /// @throws ipc::UsageError unless in.size() == size() * out.size(), ipc::PeerLost when a
  /// rank is gone, ipc::ProtocolError when ranks pass other lengths.
  template <RawRange In, detail::WritableRawRange Out, class Op = op::sum>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void reduce_scatter_block(const In& in, Out&& out, Op = {}) const {
    using T = detail::elem_t<In>;
    check_blocks(std::ranges::size(out), std::ranges::size(in), "reduce_scatter_block");
    std::vector<std::size_t> counts(static_cast<std::size_t>(size_), std::ranges::size(out));
    std::vector<T> scratch(std::ranges::begin(in), std::ranges::end(in));
    detail::coll_reduce_scatter(coll(), scratch.data(), counts.data(), detail::reduction<T, Op>(),
                                std::ranges::data(out));
  }
  /// The same with blocks of counts[i] elements (every rank passes the same counts;
  /// out.size() == counts[rank()]).
  /// @throws ipc::UsageError for counts that do not match size(), in.size() or out.size().
  template <RawRange In, detail::WritableRawRange Out, class Op = op::sum>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  void reduce_scatter(const In& in, Out&& out, std::span<const std::size_t> counts, Op = {}) const {
    using T = detail::elem_t<In>;
    layout(counts, sizeof(T), std::ranges::size(out), std::ranges::size(in), "reduce_scatter");
    std::vector<T> scratch(std::ranges::begin(in), std::ranges::end(in));
    detail::coll_reduce_scatter(coll(), scratch.data(), counts.data(), detail::reduction<T, Op>(),
                                std::ranges::data(out));
  }

  /// op over the values of ranks 0 to rank() (inclusive prefix reduction).
  /// @throws ipc::PeerLost when a rank is gone, ipc::ProtocolError when ranks pass other types.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  T scan(const T& value, Op = {}) const {
    T out = value;
    detail::coll_scan(coll(), &value, &out, 1, detail::reduction<T, Op>(), false);
    return out;
  }
  /// op over the values of ranks 0 to rank()-1; rank 0 gets T{}.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  T exscan(const T& value, Op = {}) const {
    T out{};
    detail::coll_scan(coll(), &value, &out, 1, detail::reduction<T, Op>(), true);
    return out;
  }
  /// Element by element, in place: values becomes the prefix over ranks 0 to rank().
  template <detail::WritableRawRange R, class Op = op::sum>
  void scan_inplace(R&& values, Op = {}) const {
    using T = detail::elem_t<R>;
    detail::coll_scan(coll(), std::ranges::data(values), std::ranges::data(values), std::ranges::size(values),
                      detail::reduction<T, Op>(), false);
  }
  /// Element by element, in place: values becomes the prefix over ranks 0 to rank()-1;
  /// rank 0's values are left as they were.
  template <detail::WritableRawRange R, class Op = op::sum>
  void exscan_inplace(R&& values, Op = {}) const {
    using T = detail::elem_t<R>;
    std::vector<T> in(std::ranges::begin(values), std::ranges::end(values));
    detail::coll_scan(coll(), in.data(), std::ranges::data(values), in.size(), detail::reduction<T, Op>(), true);
  }

  // ---- Non-blocking collectives ----
  //
  // They return at once with a Request; wait(), test(), wait_all() complete them. Every
  // rank starts the same ones in the same order on a communicator (as for the blocking
  // ones); the buffers belong to the operation until its request has completed. They
  // run on a thread of the runtime, one per communicator that uses them, while the
  // program computes, apart from the blocking collectives (which may run meanwhile)
  // and from other communicators' (which may be started in any order). Failures (a
  // lost rank) come from the request's wait(); bad arguments throw at the start.

  /// Completes once every rank has started it.
  Request ibarrier() const {
    return start_collective([](const Communicator& c) { c.barrier(); });
  }
  /// bcast(value, root), in the background; `value` is resized on the way when it is
  /// a vector or a string.
  /// @throws ipc::UsageError for a bad root.
  template <class T>
  Request ibcast(T& value, int root) const {
    check_root(root, "ibcast");
    return start_collective([&value, root](const Communicator& c) { c.bcast(value, root); });
  }
  /// `out` = op over every rank's `value` (copied at the start), on every rank.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  Request iallreduce(const T& value, T& out, Op = {}) const {
    return start_collective([&out, value](const Communicator& c) { out = c.allreduce(value, Op{}); });
  }
  /// allreduce_inplace(values, op), in the background.
  template <detail::WritableRawRange R, class Op = op::sum>
  Request iallreduce_inplace(R&& values, Op = {}) const {
    std::span<detail::elem_t<R>> v(std::ranges::data(values), std::ranges::size(values));
    return start_collective([v](const Communicator& c) { c.allreduce_inplace(v, Op{}); });
  }
  /// `out` = op over every rank's `value` on `root` (T{} elsewhere).
  /// @throws ipc::UsageError for a bad root.
  template <class T, class Op = op::sum>
    requires RawValue<T> && (!RawRange<T>)
  Request ireduce(const T& value, T& out, int root, Op = {}) const {
    check_root(root, "ireduce");
    return start_collective([&out, value, root](const Communicator& c) { out = c.reduce(value, root, Op{}); });
  }
  /// Element by element over every rank's `values`, in place on `root` (the other
  /// ranks' `values` are left as they were).
  /// @throws ipc::UsageError for a bad root.
  template <detail::WritableRawRange R, class Op = op::sum>
  Request ireduce_inplace(R&& values, int root, Op = {}) const {
    check_root(root, "ireduce");
    std::span<detail::elem_t<R>> v(std::ranges::data(values), std::ranges::size(values));
    return start_collective([v, root](const Communicator& c) { c.reduce_inplace(v, root, Op{}); });
  }
  /// Every rank's `value` (copied at the start), in rank order, into `out` (resized).
  template <class T>
    requires RawValue<T>
  Request iallgather(const T& value, std::vector<T>& out) const {
    out.resize(static_cast<std::size_t>(size_));
    return start_collective([&out, value](const Communicator& c) { c.allgather(std::span<const T>(&value, 1), out); });
  }
  /// allgather(in, out), in the background.
  /// @throws ipc::UsageError unless out.size() == size() * in.size().
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  Request iallgather(const In& in, Out&& out) const {
    using T = detail::elem_t<In>;
    check_blocks(std::ranges::size(in), std::ranges::size(out), "iallgather");
    std::span<const T> i(std::ranges::data(in), std::ranges::size(in));
    std::span<T> o(std::ranges::data(out), std::ranges::size(out));
    return start_collective([i, o](const Communicator& c) { c.allgather(i, o); });
  }
  /// alltoall(in, out), in the background.
  /// @throws ipc::UsageError unless in.size() == out.size() and both are a multiple of size().
  template <RawRange In, detail::WritableRawRange Out>
    requires std::same_as<detail::elem_t<In>, detail::elem_t<Out>>
  Request ialltoall(const In& in, Out&& out) const {
    using T = detail::elem_t<In>;
    std::size_t n = std::ranges::size(in), m = std::ranges::size(out);
    if (n != m || n % static_cast<std::size_t>(size_) != 0) alltoall_sizes(n, m);
    std::span<const T> i(std::ranges::data(in), n);
    std::span<T> o(std::ranges::data(out), m);
    return start_collective([i, o](const Communicator& c) { c.alltoall(i, o); });
  }

 private:
  friend struct detail::CommAccess;
  Communicator(detail::Engine& engine, const detail::CollShared* shared, std::uint32_t context, int rank, int size);
  detail::CollContext coll() const { return {engine_, shared_, coll_context_, rank_, size_}; }
  Communicator derive(detail::Purpose purpose, const std::vector<int>* job_ranks, int rank = -1) const;
  /// Runs `body` on this communicator's lane of non-blocking collectives, on a copy of
  /// it whose collectives travel on their own context; the request completes with it.
  Request start_collective(std::function<void(const Communicator&)> body) const;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /// Checks per-rank counts (one per rank; this rank's equal to `mine` and their sum
  /// to `all`, npos: not checked) and gives them and their displacements in bytes.
  detail::Layout layout(std::span<const std::size_t> counts, std::size_t elem, std::size_t mine, std::size_t all,
                        const char* op) const;
  static std::size_t total(const std::vector<std::size_t>& counts) {
    std::size_t n = 0;
    for (auto c : counts) n += c;
    return n;
  }
  template <class T, class Op>
  T reduce_serialized(const T& value, int root, Op& op) const {
    std::vector<std::byte> bytes = std::move(*detail::serialize(value));
    detail::SerialCombine combine = [](void* state, std::vector<std::byte>& acc, const std::vector<std::byte>& theirs) {
      Op& f = *static_cast<Op*>(state);
      T a{}, b{};
      detail::deserialize_or_throw(acc, a);
      detail::deserialize_or_throw(theirs, b);
      if constexpr (std::is_invocable_r_v<T, Op&, const T&, const T&>) {
        a = f(std::as_const(a), std::as_const(b));
      } else {
        static_assert(requires { a.size(); a[0] = f(std::as_const(a[0]), std::as_const(b[0])); },
                      "ipc: the reduction must take two values of the type (or two elements of the vector)");
        if (a.size() != b.size()) detail::throw_lengths_differ("allreduce", a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = f(std::as_const(a[i]), std::as_const(b[i]));
      }
      acc = std::move(*detail::serialize(a));
    };
    detail::coll_reduce_serialized(coll(), bytes, combine, &op, root);
    T out{};
    if (rank_ == root) detail::deserialize_or_throw(bytes, out);
    return out;
  }
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
