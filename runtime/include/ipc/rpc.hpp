/// @file rpc.hpp
/// Remote procedure calls between the ranks of a communicator.
///
///     ipc::Rpc rpc(rt.world());                   // every rank, in the same order
///     rpc.define("square", [](double x) { return x * x; });
///     rt.world().barrier();                        // procedures exist everywhere
///     ipc::Future<double> f = rpc.call<double>(1, "square", 3.0);
///     double y = f.get();                          // 9, computed on rank 1
///     rpc.post(2, "log", std::string("hello"));    // fire and forget
///     auto all = ipc::when_all(rpc.call_all<double>("square", 2.0)).get();
///
/// Procedures are registered by name. A call names the result type and passes the
/// arguments; the name and the signature travel with it (as text and as a 64-bit
/// hash), so calling with other types than the procedure takes is a clear
/// ipc::RemoteError, not garbage. Arguments and results go through Cereal: anything
/// Cereal can serialize (include its headers for std::string, std::vector, ...).
/// A string literal argument travels as a std::string.
///
/// Each Rpc serves its rank's procedures on a thread of its own, which sleeps while
/// no call comes: handlers run while the program computes, one at a time, and may
/// themselves call, send and receive. An exception a handler throws comes back to
/// the caller as ipc::RemoteError (rank, procedure, exception type and message).
///
/// A handler waiting (get(), ready(), wait_for()) for a call of its own keeps serving
/// its rank's requests meanwhile, so calls may nest and go back and forth between
/// ranks. Handlers must not run collectives. Futures stay usable
/// after their Rpc has ended; remote handles do not.
///
/// An Rpc is created and destroyed collectively (every rank of the world, in the same
/// order as its other Rpcs). Its destructor returns once no call is in flight or
/// running anywhere (counted with collectives until two rounds agree), so calls and
/// posts that are still under way, and the calls they make, finish first.
#pragma once

#include <cereal/archives/binary.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ipc/communicator.hpp"
#include "ipc/detail/archive.hpp"
#include "ipc/errors.hpp"
#include "ipc/request.hpp"

namespace ipc {

template <class T>
class Future;
class Rpc;
template <class T>
class Remote;
template <class T>
class ClassDef;

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

template <class R, class... A>
std::string signature() {
  std::string s(type_name<R>());
  s += '(';
  bool first = true;
  ((s += (first ? "" : ", "), s += type_name<A>(), first = false), ...);
  s += ')';
  return s;
}

/// 64-bit FNV-1a of name and signature: what a call is matched by.
std::uint64_t procedure_hash(std::string_view name, std::string_view signature);

template <class F>
struct callable : callable<decltype(&F::operator())> {};
template <class R, class... A>
struct callable<R (*)(A...)> {
  using result = R;
  using args = std::tuple<std::decay_t<A>...>;
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

class RpcCore;
class Engine;

/// What futures and remote handles keep of their Rpc: enough to finish a call after
/// the Rpc has ended (its destructor waits until every call is answered), and to
/// know that it has.
struct RpcLink {
  Engine* engine = nullptr;
  int rank = 0;
  std::atomic<RpcCore*> core{nullptr};  // null once the Rpc has ended
};

/// The caller's side of one call: its request and reply in flight.
struct CallState {
  std::shared_ptr<RpcLink> link;
  int rank = 0;
  std::string name;
  std::shared_ptr<RequestState> reply;
  std::shared_ptr<RequestState> request;
  std::shared_ptr<std::vector<std::byte>> reply_bytes = std::make_shared<std::vector<std::byte>>();
};

/// Starts a call: `body` holds the name, signature, id and the arguments.
std::shared_ptr<CallState> start_call(RpcCore& core, int rank, const std::string& name,
                                      std::shared_ptr<std::vector<std::byte>> body, std::uint64_t id);
void start_post(RpcCore& core, int rank, std::shared_ptr<std::vector<std::byte>> body);
/// Waits for the reply; returns the archive positioned at the result, or throws the
/// remote error.
void finish_call(CallState& s, const std::function<void(cereal::BinaryInputArchive&)>& read);
bool call_ready(CallState& s);
std::uint64_t next_call_id(RpcCore& core);
const std::shared_ptr<RpcLink>& link_of(RpcCore& core);

template <class... A>
std::shared_ptr<std::vector<std::byte>> request_body(std::uint64_t hash, const std::string& name, const std::string& sig,
                                                     std::uint64_t id, const A&... args) {
  auto body = std::make_shared<std::vector<std::byte>>();
  VectorSink sink(*body);
  std::ostream os(&sink);
  {
    cereal::BinaryOutputArchive ar(os);
    ar(hash, id, name, sig);
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
  virtual T get() = 0;
};

template <class T>
struct CallFuture final : FutureImpl<T> {
  std::shared_ptr<CallState> s;
  explicit CallFuture(std::shared_ptr<CallState> st) : s(std::move(st)) {}
  bool ready() override { return call_ready(*s); }
  T get() override {
    if constexpr (std::is_void_v<T>) {
      finish_call(*s, [](cereal::BinaryInputArchive&) {});
    } else {
      // A default-constructible T is read in place; others need a Cereal
      // load_and_construct and go through std::optional.
      std::optional<T> out;
      finish_call(*s, [&](cereal::BinaryInputArchive& ar) {
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
  std::vector<T> get() override {
    std::vector<T> out;
    out.reserve(parts.size());
    for (auto& p : parts) out.push_back(p->get());
    return out;
  }
};

template <class T>
std::shared_ptr<FutureImpl<T>> impl_of(Future<T>& f);

/// Sleeps a little between polls while a caller waits with a deadline.
void wait_pause(std::chrono::steady_clock::time_point since);

}  // namespace detail

/// The result of a call, on its way. get() once; a Future dropped without get() lets
/// the call finish unobserved.
template <class T>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureImpl<T>> impl) : impl_(std::move(impl)) {}

  bool valid() const { return impl_ != nullptr; }
  /// Waits for the result (or rethrows the remote error, ipc::PeerLost...). Once.
  T get() {
    if (!impl_) throw UsageError("Future::get on an empty future (already taken?)");
    auto impl = std::move(impl_);
    return impl->get();
  }
  /// Whether get() would return at once (polls the transports once).
  bool ready() {
    if (!impl_) throw UsageError("Future::ready on an empty future");
    return impl_->ready();
  }
  /// Waits up to `d`; true when the result is there.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    auto start = std::chrono::steady_clock::now();
    auto end = start + d;
    while (!ready()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      detail::wait_pause(start);
    }
    return true;
  }
  /// A future of f(result), computed when the new future's get() is called.
  template <class F>
  auto then(F f) {
    using U = std::conditional_t<std::is_void_v<T>, std::invoke_result<F>, std::invoke_result<F, T>>;
    using R = typename U::type;
    if (!impl_) throw UsageError("Future::then on an empty future");
    return Future<R>(std::make_shared<detail::ThenFuture<T, R, F>>(std::move(impl_), std::move(f)));
  }

 private:
  template <class U>
  friend std::shared_ptr<detail::FutureImpl<U>> detail::impl_of(Future<U>& f);
  std::shared_ptr<detail::FutureImpl<T>> impl_;
};

namespace detail {
template <class T>
std::shared_ptr<FutureImpl<T>> impl_of(Future<T>& f) {
  if (!f.impl_) throw UsageError("when_all: an empty future");
  return std::move(f.impl_);
}
}  // namespace detail

/// One future of all results, in order (void results: call get() on each instead).
template <class T>
Future<std::vector<T>> when_all(std::vector<Future<T>> futures) {
  auto all = std::make_shared<detail::AllFuture<T>>();
  for (auto& f : futures) all->parts.push_back(detail::impl_of(f));
  return Future<std::vector<T>>(std::move(all));
}

/// Remote procedures of the ranks of a communicator (see the top of this file).
class Rpc {
 public:
  /// Collective: every rank of `comm` creates its Rpc, in the same order.
  explicit Rpc(const Communicator& comm);
  /// Collective: returns once every rank has ended its Rpc and every call that
  /// reached this rank was answered.
  ~Rpc();
  Rpc(const Rpc&) = delete;
  Rpc& operator=(const Rpc&) = delete;

  int rank() const;
  int size() const;

  /// Registers `f` (a function or lambda, not generic) under `name` on this rank.
  /// Define procedures before other ranks call them (e.g. define, then barrier).
  template <class F>
  void define(const std::string& name, F f) {
    using C = detail::callable<F>;
    using R = typename C::result;
    using Args = typename C::args;
    define_erased(name, C::sig(), [f = std::move(f)](cereal::BinaryInputArchive& in, cereal::BinaryOutputArchive& out) mutable {
      Args args;
      std::apply([&](auto&... a) { (in(a), ...); }, args);
      if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(args));
      } else {
        R r = std::apply(f, std::move(args));
        out(r);
      }
    });
  }

  /// Calls `name` on `rank` with `args`; the procedure must return R and take exactly
  /// the arguments' types (string literals as std::string).
  template <class R = void, class... A>
  Future<R> call(int rank, const std::string& name, const A&... args) {
    std::string sig = detail::signature<R, detail::wire_arg_t<A>...>();
    std::uint64_t id = detail::next_call_id(*core_);
    auto body = detail::request_body(detail::procedure_hash(name, sig), name, sig, id, args...);
    return Future<R>(std::make_shared<detail::CallFuture<R>>(detail::start_call(*core_, rank, name, std::move(body), id)));
  }

  /// Calls `name` on `rank` without waiting for, or getting, a result. A failure is
  /// reported on the called rank's standard error.
  template <class... A>
  void post(int rank, const std::string& name, const A&... args) {
    std::string sig = detail::signature<void, detail::wire_arg_t<A>...>();
    auto body = detail::request_body(detail::procedure_hash(name, sig), name, sig, 0, args...);
    detail::start_post(*core_, rank, std::move(body));
  }

  /// Makes class T constructible on this rank by others, as `name`, from arguments of
  /// types Args...; add its methods with ClassDef::method. Objects live until
  /// Remote::destroy() or the end of the Rpc.
  template <class T, class... Args>
  ClassDef<T> define_class(const std::string& name);

  /// Constructs a `name` object on `rank` from `args`; its handle once it exists.
  template <class T, class... A>
  Future<Remote<T>> make(int rank, const std::string& name, const A&... args);

  /// Calls `name` on every rank (this one included); futures in rank order.
  template <class R = void, class... A>
  std::vector<Future<R>> call_all(const std::string& name, const A&... args) {
    std::vector<Future<R>> out;
    for (int r = 0; r < size(); ++r) out.push_back(call<R>(r, name, args...));
    return out;
  }

 private:
  void define_erased(const std::string& name, std::string signature, detail::Handler h);
  std::unique_ptr<detail::RpcCore> core_;
  std::shared_ptr<detail::ObjectTable> objects_ = std::make_shared<detail::ObjectTable>();
  template <class T>
  friend class ClassDef;
};

/// A class whose objects other ranks construct here and call (Rpc::define_class).
template <class T>
class ClassDef {
 public:
  ClassDef(Rpc& rpc, std::string name) : rpc_(rpc), name_(std::move(name)) {}
  /// Makes member function `m` callable as `method` on objects of this class.
  template <class M>
  ClassDef& method(const std::string& method, M m) {
    using Tr = detail::method_traits<M>;
    static_assert(std::is_base_of_v<typename Tr::object, T>, "ipc: a method of another class");
    define_method(method, m, static_cast<typename Tr::args*>(nullptr));
    return *this;
  }

 private:
  template <class M, class... A>
  void define_method(const std::string& method, M m, std::tuple<A...>*) {
    using R = typename detail::method_traits<M>::result;
    auto table = rpc_.objects_;
    std::string cls = name_;
    rpc_.define(name_ + "::" + method, [table, cls, m](std::uint64_t id, A... a) -> R {
      auto obj = table->template get<T>(id, cls);
      return ((*obj).*m)(std::move(a)...);
    });
  }
  Rpc& rpc_;
  std::string name_;
};

/// A handle of an object that lives on another rank (Rpc::make). Copyable; copies
/// refer to the same object.
template <class T>
class Remote {
 public:
  Remote() = default;
  Remote(Rpc* rpc, std::shared_ptr<detail::RpcLink> link, int rank, std::string cls, std::uint64_t id)
      : rpc_(rpc), link_(std::move(link)), rank_(rank), cls_(std::move(cls)), id_(id) {}
  int rank() const { return rank_; }
  std::uint64_t id() const { return id_; }
  /// Calls `method` on the object (its member function's exact argument types).
  template <class R = void, class... A>
  Future<R> call(const std::string& method, const A&... args) const {
    return rpc()->template call<R>(rank_, cls_ + "::" + method, id_, args...);
  }
  /// Destroys the object on its rank.
  Future<void> destroy() const { return rpc()->template call<void>(rank_, cls_ + "::~", id_); }

 private:
  Rpc* rpc() const {
    if (!link_) throw UsageError("Remote: an empty handle");
    if (!link_->core.load()) throw UsageError("Remote: the Rpc of object '" + cls_ + "' has ended");
    return rpc_;
  }
  Rpc* rpc_ = nullptr;
  std::shared_ptr<detail::RpcLink> link_;
  int rank_ = -1;
  std::string cls_;
  std::uint64_t id_ = 0;
};

template <class T, class... Args>
ClassDef<T> Rpc::define_class(const std::string& name) {
  auto table = objects_;
  define(name + "::new", [table](Args... a) -> std::uint64_t {
    std::uint64_t id = table->next++;
    table->objects[id] = std::make_shared<T>(std::move(a)...);
    return id;
  });
  define(name + "::~", [table, name](std::uint64_t id) {
    if (table->objects.erase(id) == 0)
      throw std::out_of_range("no object " + std::to_string(id) + " of class '" + name + "' (destroyed?)");
  });
  return ClassDef<T>(*this, name);
}

template <class T, class... A>
Future<Remote<T>> Rpc::make(int rank, const std::string& name, const A&... args) {
  Rpc* self = this;
  auto link = detail::link_of(*core_);
  return call<std::uint64_t>(rank, name + "::new", args...).then([self, link, rank, name](std::uint64_t id) {
    return Remote<T>(self, link, rank, name, id);
  });
}

}  // namespace ipc
