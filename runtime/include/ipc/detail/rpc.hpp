/// @file detail/rpc.hpp
/// The machinery under rpc.hpp: signatures, type-erased handlers, the state of a
/// call in flight, futures' implementations, remote objects' table. Not for programs.
#pragma once

#include <cereal/archives/binary.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <span>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ipc/communicator.hpp"
#include "ipc/detail/archive.hpp"
#include "ipc/request.hpp"

namespace ipc {

template <class T>
class Future;

namespace detail {

// ---- signatures --------------------------------------------------------------------

template <class T>
constexpr std::string_view type_name() {
  std::string_view p = __PRETTY_FUNCTION__;  // "... [with T = int; ...]" or "... [T = int]"
  auto s = p.find("T = ");
  if (s == std::string_view::npos) return p;
  s += 4;
  auto e = p.find_first_of(";]", s);
  return p.substr(s, e - s);
}

/// What an argument travels as: a string literal or char pointer as a std::string.
template <class A>
using wire_arg_t = std::conditional_t<std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*>,
                                      std::string, std::decay_t<A>>;

/// An argument as it travels: the argument itself, or a char string as std::string.
template <class A>
decltype(auto) as_wire(const A& a) {
  if constexpr (std::is_same_v<wire_arg_t<A>, std::string> && !std::is_same_v<std::decay_t<A>, std::string>)
    return std::string(a);
  else
    return (a);
}
/// Bytes of a direct argument as it travels (a char string without a std::string).
template <class A>
std::size_t wire_size(const A& a) {
  if constexpr (std::is_same_v<wire_arg_t<A>, std::string> && !std::is_same_v<std::decay_t<A>, std::string>) {
    if (a == nullptr) throw std::invalid_argument("ipc: an RPC argument is a null char pointer");
    return sizeof(cereal::size_type) + std::char_traits<char>::length(a);
  } else {
    return direct_size(a);
  }
}
/// Writes a direct argument at `p` (room for wire_size(a)); returns the end.
template <class A>
std::byte* wire_write(std::byte* p, const A& a) {
  if constexpr (std::is_same_v<wire_arg_t<A>, std::string> && !std::is_same_v<std::decay_t<A>, std::string>)
    return direct_write(p, std::string_view(a));
  else
    return direct_write(p, a);
}

/// A type's name as a program spells it: std::string, not
/// std::__cxx11::basic_string<char>.
std::string readable_type(std::string_view compiler_name);

/// Made once per signature (on the way of every call otherwise).
template <class R, class... A>
const std::string& signature() {
  static const std::string sig = [] {
    std::string s = readable_type(type_name<R>());
    s += '(';
    bool first = true;
    ((s += (first ? "" : ", "), s += readable_type(type_name<A>()), first = false), ...);
    s += ')';
    return s;
  }();
  return sig;
}

/// 64-bit FNV-1a of name and signature: what a call is matched by.
std::uint64_t procedure_hash(std::string_view name, std::string_view signature);

/// procedure_hash(name, signature<R, A...>()), remembered per thread for the name
/// called last with this signature (a loop of calls hashes its name once).
template <class R, class... A>
std::uint64_t call_hash(const std::string& name) {
  thread_local std::string last;
  thread_local std::uint64_t hash = 0;
  thread_local bool known = false;
  if (!known || name != last) {
    known = false;  // until both are in (the copy may throw)
    last = name;
    hash = procedure_hash(name, signature<R, A...>());
    known = true;
  }
  return hash;
}

template <class F>
struct callable : callable<decltype(&F::operator())> {};
template <class R, class... A>
struct callable<R (*)(A...)> {
  using result = R;
  using args = std::tuple<std::decay_t<A>...>;
  using type = R(std::decay_t<A>...);
  static std::string sig() { return signature<R, std::decay_t<A>...>(); }
};
template <class R, class... A>
struct callable<R(A...)> : callable<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable<R (C::*)(A...) const> : callable<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable<R (C::*)(A...)> : callable<R (*)(A...)> {};
template <class R, class... A>
struct callable<R (*)(A...) noexcept> : callable<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable<R (C::*)(A...) const noexcept> : callable<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable<R (C::*)(A...) noexcept> : callable<R (*)(A...)> {};

/// A procedure, type-erased: reads its arguments from `in`, writes its result to `out`.
using Handler = std::function<void(cereal::BinaryInputArchive& in, cereal::BinaryOutputArchive& out)>;
/// The same procedure without archives, for arguments and result of direct_wire
/// types: reads the arguments from `in`, appends the result to `out`; false when the
/// arguments do not decode.
using DirectHandler = std::function<bool(std::span<const std::byte> in, std::vector<std::byte>& out)>;

template <class T>
struct direct_args : std::false_type {};
template <class... A>
struct direct_args<std::tuple<A...>> : std::bool_constant<direct_wire_v<A...>> {};

class RpcCore;

/// What futures and remote handles keep of their Rpc: enough to finish a call after
/// the Rpc has ended (its destructor waits until every call is answered), and to
/// know that it has.
struct RpcLink {
  explicit RpcLink(const Communicator& c) : world(c), rank(c.rank()) {}
  Communicator world;  // the Rpc's communicator (the engine's services: waiting, names)
  int rank;
  std::atomic<RpcCore*> core{nullptr};  // null once the Rpc has ended
};

/// A buffer for a reply: one that an ended call of this thread left, when there is
/// one (its allocations made again for every call cost a fifth of a small call's
/// instructions).
std::shared_ptr<std::vector<std::byte>> reply_buffer();
/// Keeps `b` for a later call of this thread when nothing else holds it.
void recycle_reply_buffer(std::shared_ptr<std::vector<std::byte>> b) noexcept;
/// This thread's buffer for a request's bytes (with the room, and the size, an
/// earlier request left), and giving it back once sent.
std::vector<std::byte> request_buffer() noexcept;
void recycle_request_buffer(std::vector<std::byte>&& b) noexcept;

/// Memory for calls' futures, from a per-thread free list: a future is made and freed
/// at the rate of calls (malloc and free cost a tenth of a small call's instructions).
inline constexpr std::size_t kCallBlock = 256;
void* call_block_get();
void call_block_put(void* p) noexcept;
template <class T>
struct CallAllocator {
  using value_type = T;
  static constexpr bool kPooled = sizeof(T) <= kCallBlock && alignof(T) <= alignof(std::max_align_t);
  CallAllocator() = default;
  template <class U>
  CallAllocator(const CallAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (kPooled && n == 1) return static_cast<T*>(call_block_get());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (kPooled && n == 1)
      call_block_put(p);
    else
      std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const CallAllocator<U>&) const {
    return true;
  }
};

/// The caller's side of one call: its request and reply in flight.
struct CallState {
  std::shared_ptr<RpcLink> link;
  int rank = 0;
  std::string name;
  Request reply;
  Request request;
  std::shared_ptr<std::vector<std::byte>> reply_bytes = reply_buffer();

  CallState() = default;
  CallState(const CallState&) = delete;
  CallState& operator=(const CallState&) = delete;
  ~CallState() {
    // Kept for a later call only when the reply has landed (its completion, seen here,
    // comes after the bytes were written): a pending receive, of a future dropped
    // early, keeps the buffer until the reply lands, and it is freed then.
    bool landed = reply.done();
    reply = Request();
    if (landed) recycle_reply_buffer(std::move(reply_bytes));
  }
};

/// Whether this thread has named procedure `hash` to `rank` of this Rpc before (a
/// request that named it has left): its requests there then carry the hash alone.
bool named_before(RpcCore& core, int rank, std::uint64_t hash) noexcept;
/// Starts a call into `s` (fresh): `body` holds the id, the procedure (named, or its
/// hash alone when `by_hash`) and the arguments.
/// @throws ipc::UsageError for a rank outside the job (a lost rank fails the future).
void start_call(CallState& s, RpcCore& core, int rank, const std::string& name, std::vector<std::byte> body,
                std::uint64_t id, std::uint64_t hash, bool by_hash);
void start_post(RpcCore& core, int rank, std::vector<std::byte> body, std::uint64_t hash, bool by_hash);
/// Waits for the reply; returns the bytes of its result, or throws the remote error.
std::span<const std::byte> await_reply(CallState& s);
/// Throws the ProtocolError of a reply whose result does not decode (`why`).
[[noreturn]] void undecodable_reply(const CallState& s, const char* why);
/// Waits for the reply and reads its result with `read` (through Cereal).
void finish_call(CallState& s, const std::function<void(cereal::BinaryInputArchive&)>& read);
/// Polls once: whether the reply is there (or the call failed: get() rethrows).
bool call_ready(CallState& s);
/// Waits for the reply until `deadline` (serving this rank's requests meanwhile when
/// called from a handler); true when it is there.
bool call_wait_until(CallState& s, std::chrono::steady_clock::time_point deadline);
std::uint64_t next_call_id(RpcCore& core);
const std::shared_ptr<RpcLink>& link_of(RpcCore& core);

/// A request: hash (8 bytes), id (8), the name's and the signature's lengths (4 + 4),
/// name, signature, then the arguments (Cereal). Once a thread has named a procedure
/// to a rank, its requests there carry the hash and the id alone before the arguments
/// (`name` null; another tag says so): the server learned the texts from
/// the first. The server finds the procedure by the hash and reads the texts only for
/// what it reports.
inline constexpr std::size_t kRequestHead = 24;
inline constexpr std::size_t kHashRequestHead = 16;
template <class... A>
std::vector<std::byte> request_body(std::uint64_t hash, const std::string* name, const std::string* sig,
                                    std::uint64_t id, const A&... args) {
  std::vector<std::byte> body = request_buffer();
  const std::size_t head = name ? kRequestHead + name->size() + sig->size() : kHashRequestHead;
  // Direct arguments: the whole request sized at once (one resize, no growth per
  // argument); others: room for small ones, so their bytes go in without reallocation.
  if constexpr (direct_wire_v<wire_arg_t<A>...>) {
    body.resize(head + (std::size_t{0} + ... + wire_size(args)));
  } else {
    body.reserve(head + 64);
    body.resize(head);
  }
  std::memcpy(body.data(), &hash, 8);
  std::memcpy(body.data() + 8, &id, 8);
  if (name) {
    auto nlen = static_cast<std::uint32_t>(name->size()), slen = static_cast<std::uint32_t>(sig->size());
    std::memcpy(body.data() + 16, &nlen, 4);
    std::memcpy(body.data() + 20, &slen, 4);
    std::memcpy(body.data() + kRequestHead, name->data(), nlen);
    std::memcpy(body.data() + kRequestHead + nlen, sig->data(), slen);
  }
  if constexpr (direct_wire_v<wire_arg_t<A>...>) {
    std::byte* p = body.data() + head;
    ((p = wire_write(p, args)), ...);
  } else {
    VectorSink sink(body);
    OutStream os(&sink);
    cereal::BinaryOutputArchive ar(*os);
    (ar(as_wire(args)), ...);
  }
  return body;
}

// ---- remote objects ----------------------------------------------------------------

/// The objects this rank holds for others (handlers only: one server thread).
struct ObjectTable {
  std::uint64_t next = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<void>> objects;

  /// Shared: a method that waits (serving nested calls meanwhile) keeps its object
  /// even if one of those calls destroys it.
  template <class T>
  std::shared_ptr<T> get(std::uint64_t id, const std::string& cls) {
    auto it = objects.find(id);
    if (it == objects.end())
      throw std::out_of_range("no object " + std::to_string(id) + " of class '" + cls + "' (destroyed?)");
    return std::static_pointer_cast<T>(it->second);
  }
};

template <class M>
struct method_traits;
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...)> {
  using result = R;
  using object = T;
  using args = std::tuple<std::decay_t<A>...>;
};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) const> : method_traits<R (T::*)(A...)> {};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) noexcept> : method_traits<R (T::*)(A...)> {};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) const noexcept> : method_traits<R (T::*)(A...)> {};

// ---- futures -----------------------------------------------------------------------

template <class T>
struct FutureImpl {
  virtual ~FutureImpl() = default;
  /// Polls once; true when get() would not block.
  virtual bool ready() = 0;
  /// Waits until get() would not block, at most until `deadline`.
  virtual bool wait_until(std::chrono::steady_clock::time_point deadline) = 0;
  virtual T get() = 0;
};

template <class T>
struct CallFuture final : FutureImpl<T> {
  // User-provided: allocate_shared value-initializes, which for an implicit constructor
  // first zeroes the whole object with `rep stos` (tens of cycles on every call).
  CallFuture() {}  // NOLINT(modernize-use-equals-default)
  CallState s;  // one allocation per call: the future and its call's state together
  bool ready() override { return call_ready(s); }
  bool wait_until(std::chrono::steady_clock::time_point deadline) override { return call_wait_until(s, deadline); }
  T get() override {
    if constexpr (std::is_void_v<T>) {
      await_reply(s);
    } else if constexpr (direct_wire_v<T>) {
      std::span<const std::byte> in = await_reply(s);
      T out{};
      if (!direct_get(in, out)) undecodable_reply(s, "the reply is shorter than the result");
      return out;
    } else {
      // A default-constructible T is read in place; others need a Cereal
      // load_and_construct and go through std::optional.
      std::optional<T> out;
      finish_call(s, [&](cereal::BinaryInputArchive& ar) {
        out.emplace();
        ar(*out);
      });
      return std::move(*out);
    }
  }
};

template <class T, class U, class F>
struct ThenFuture final : FutureImpl<U> {
  std::shared_ptr<FutureImpl<T>> parent;
  F f;
  ThenFuture(std::shared_ptr<FutureImpl<T>> p, F fn) : parent(std::move(p)), f(std::move(fn)) {}
  bool ready() override { return parent->ready(); }
  bool wait_until(std::chrono::steady_clock::time_point deadline) override { return parent->wait_until(deadline); }
  U get() override {
    if constexpr (std::is_void_v<T>) {
      parent->get();
      return f();
    } else {
      return f(parent->get());
    }
  }
};

template <class T>
struct AllFuture final : FutureImpl<std::vector<T>> {
  std::vector<std::shared_ptr<FutureImpl<T>>> parts;
  bool ready() override {
    for (auto& p : parts)
      if (!p->ready()) return false;
    return true;
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline) override {
    for (auto& p : parts)
      if (!p->wait_until(deadline)) return false;
    return true;
  }
  std::vector<T> get() override {
    std::vector<T> out;
    out.reserve(parts.size());
    for (auto& p : parts) out.push_back(p->get());
    return out;
  }
};

template <class T>
std::shared_ptr<FutureImpl<T>> impl_of(Future<T>& f);

}  // namespace detail

}  // namespace ipc
