/// @file rpc.hpp
/// Remote procedure calls between the ranks of a communicator.
///
///     ipc::Rpc rpc(rt.world());                   // every rank, in the same order
///     auto square = rpc.define("square", [](double x) { return x * x; });
///     ipc::Future<double> f = square.call(1, 3);   // typed: 3 converts to double
///     double y = f.get();                          // 9, computed on rank 1
///     auto g = rpc.call<double>(1, "square", 3.0); // by name: exact types
///     rpc.post(2, "log", std::string("hello"));    // fire and forget
///     auto all = ipc::when_all(rpc.call_all<double>("square", 2.0)).get();
///
/// Procedures are registered by name. A call by name names the result type and passes
/// the arguments; the name and the signature travel with it (as text and as a 64-bit
/// hash), so calling with other types than the procedure takes is refused with a clear
/// ipc::CallRefused ("rank 1 defines it as long(long, long), called as long(int, int)"),
/// not garbage; the typed handle define() returns converts at compile time instead. A
/// call that arrives before its procedure is defined waits for the definition
/// (IPC_RPC_DEFINE_WAIT, 10 s), so a new Rpc needs no barrier before its first calls. Arguments and results go through Cereal: anything
/// Cereal can serialize (include its headers for std::string, std::vector, ...).
/// A string literal argument travels as a std::string.
///
/// Each Rpc serves its rank's procedures on a thread of its own, which sleeps while
/// no call comes: handlers run while the program computes, one at a time, and may
/// themselves call, send and receive. An exception a handler throws comes back to
/// the caller as ipc::RemoteError (rank, procedure, exception type and message); a
/// call that never ran is an ipc::CallRefused (a RemoteError whose refused() is true).
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
#include "ipc/detail/rpc.hpp"
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
template <class Sig>
class Procedure;


/// The result of a call, on its way. get() once; a Future dropped without get() lets
/// the call finish unobserved.
template <class T>
class Future {
 public:
  /// An empty future (valid() is false).
  Future() = default;
  /// Whether there is a result to get: false for an empty future and once get() or
  /// then() has taken it.
  bool valid() const { return impl_ != nullptr; }
  /// Waits for the result (or rethrows the remote error, ipc::PeerLost...). Once.
  /// @throws ipc::RemoteError when the procedure threw, ipc::CallRefused (a RemoteError) when
  /// the remote rank refused it (unknown procedure, other signature), ipc::PeerLost when the rank was lost,
  /// ipc::ProtocolError when the reply does not decode as T, ipc::UsageError on an empty
  /// future. A future of then() also throws what its function throws.
  T get() {
    if (!impl_) throw UsageError("Future::get on an empty future (already taken?)");
    auto impl = std::move(impl_);
    return impl->get();
  }
  /// Whether get() would return at once (polls the transports once); true as well when the
  /// call failed (get() throws the failure, ready() does not).
  /// @throws ipc::UsageError on an empty future.
  bool ready() {
    if (!impl_) throw UsageError("Future::ready on an empty future");
    return impl_->ready();
  }
  /// Waits up to `d`; true when the result is there (or the call failed: get() throws it).
  /// @throws ipc::UsageError on an empty future.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    if (!impl_) throw UsageError("Future::wait_for on an empty future");
    return impl_->wait_until(std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }
  /// A future of f(result), computed when the new future's get() is called; this future is
  /// taken (valid() becomes false). The new future's get() throws this one's failure or what f throws.
  /// @throws ipc::UsageError on an empty future.
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
  // Programs get futures from Rpc::call, Rpc::make, then() and when_all().
  friend class Rpc;
  template <class U>
  friend class Future;
  template <class U>
  friend Future<std::vector<U>> when_all(std::vector<Future<U>> futures);
  explicit Future(std::shared_ptr<detail::FutureImpl<T>> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<detail::FutureImpl<T>> impl_;
};

namespace detail {
template <class T>
std::shared_ptr<FutureImpl<T>> impl_of(Future<T>& f) {
  if (!f.impl_) throw UsageError("when_all: an empty future");
  return std::move(f.impl_);
}
}  // namespace detail

/// One future of all results, in order (void results: call get() on each instead). Its get()
/// throws the first failure in that order.
/// @throws ipc::UsageError for an empty future among them.
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
  /// @throws std::system_error when the server thread cannot start.
  explicit Rpc(const Communicator& comm);
  /// Collective: returns once every rank has ended its Rpc and every call that
  /// reached this rank was answered. Never throws: a failure (a rank gone) is reported on
  /// stderr.
  ~Rpc();
  Rpc(const Rpc&) = delete;
  Rpc& operator=(const Rpc&) = delete;

  /// This rank's number in the Rpc's communicator.
  int rank() const;
  /// The number of ranks of the Rpc's communicator.
  int size() const;

  /// Registers `f` (a function or lambda, not generic) under `name` on this rank, and
  /// returns a typed handle of it, whose calls are checked and converted at compile
  /// time: `auto add = rpc.define("add", f); add.call(1, 2, 3)`. A call that arrives
  /// before the definition waits for it (IPC_RPC_DEFINE_WAIT seconds, 10), so no
  /// barrier is needed between defining and calling. Defining a name again replaces
  /// its procedure.
  /// @throws ipc::UsageError for an empty name.
  template <class F>
  Procedure<typename detail::callable<F>::type> define(const std::string& name, F f) {
    using C = detail::callable<F>;
    using R = typename C::result;
    using Args = typename C::args;
    auto fp = std::make_shared<F>(std::move(f));
    detail::DirectHandler direct;
    if constexpr (detail::direct_args<Args>::value && (std::is_void_v<R> || detail::direct_wire_v<R>)) {
      direct = [fp](std::span<const std::byte> in, std::vector<std::byte>& out) -> bool {
        Args args;
        std::apply([](auto&... a) { (detail::take_spare(a), ...); }, args);
        if (!std::apply([&](auto&... a) { return (detail::direct_get(in, a) && ...); }, args)) return false;
        if constexpr (std::is_void_v<R>) {
          std::apply(*fp, std::move(args));
        } else {
          R r = std::apply(*fp, std::move(args));
          detail::direct_put(out, r);
          detail::give_spare(std::move(r));
        }
        // What the procedure took by reference (moved-from ones have no room left).
        std::apply([](auto&... a) { (detail::give_spare(std::move(a)), ...); }, args);
        return true;
      };
    }
    define_erased(
        name, C::sig(),
        [fp](cereal::BinaryInputArchive& in, cereal::BinaryOutputArchive& out) {
          Args args;
          std::apply([&](auto&... a) { (in(a), ...); }, args);
          if constexpr (std::is_void_v<R>) {
            std::apply(*fp, std::move(args));
          } else {
            R r = std::apply(*fp, std::move(args));
            out(r);
          }
        },
        std::move(direct));
    return Procedure<typename C::type>(this, name);
  }

  /// Calls `name` on `rank` with `args`; the procedure must return R and take exactly
  /// the arguments' types (string literals as std::string).
  /// @throws ipc::UsageError for a rank outside the job. The call's own failure (ipc::RemoteError,
  /// ipc::PeerLost when `rank` is gone, ...) comes from the future's get().
  template <class R = void, class... A>
  Future<R> call(int rank, const std::string& name, const A&... args) {
    const std::string& sig = detail::signature<R, detail::wire_arg_t<A>...>();
    std::uint64_t id = detail::next_call_id(*core_);
    std::uint64_t hash = detail::call_hash<R, detail::wire_arg_t<A>...>(name);
    bool by_hash = detail::named_before(*core_, rank, hash);
    auto body = detail::request_body(hash, by_hash ? nullptr : &name, &sig, id, args...);
    auto f = std::allocate_shared<detail::CallFuture<R>>(detail::CallAllocator<detail::CallFuture<R>>{});
    detail::start_call(f->s, *core_, rank, name, std::move(body), id, hash, by_hash);
    return Future<R>(std::move(f));
  }

  /// Calls `name` on `rank` without waiting for, or getting, a result. A failure is
  /// reported on the called rank's standard error.
  /// @throws ipc::UsageError for a rank outside the job (a post to a rank that is gone is not
  /// reported).
  template <class... A>
  void post(int rank, const std::string& name, const A&... args) {
    const std::string& sig = detail::signature<void, detail::wire_arg_t<A>...>();
    std::uint64_t hash = detail::call_hash<void, detail::wire_arg_t<A>...>(name);
    bool by_hash = detail::named_before(*core_, rank, hash);
    auto body = detail::request_body(hash, by_hash ? nullptr : &name, &sig, 0, args...);
    detail::start_post(*core_, rank, std::move(body), hash, by_hash);
  }

  /// Makes class T constructible on this rank by others, as `name`, from arguments of
  /// types Args...; add its methods with ClassDef::method. Objects live until
  /// Remote::destroy() or the end of the Rpc. Define classes, like procedures, before
  /// other ranks use them.
  template <class T, class... Args>
  ClassDef<T> define_class(const std::string& name);

  /// Constructs a `name` object on `rank` from `args`; its handle once it exists.
  /// @throws ipc::UsageError for a rank outside the job. The future's get() throws
  /// ipc::RemoteError when `rank` has no class `name` taking these arguments or its
  /// constructor threw, ipc::PeerLost when `rank` is gone.
  template <class T, class... A>
  Future<Remote<T>> make(int rank, const std::string& name, const A&... args);

  /// Calls `name` on every rank (this one included); futures in rank order. Failures come
  /// from each future's get(), as for call().
  template <class R = void, class... A>
  std::vector<Future<R>> call_all(const std::string& name, const A&... args) {
    std::vector<Future<R>> out;
    for (int r = 0; r < size(); ++r) out.push_back(call<R>(r, name, args...));
    return out;
  }

 private:
  void define_erased(const std::string& name, std::string signature, detail::Handler h,
                     detail::DirectHandler direct = {});
  std::unique_ptr<detail::RpcCore> core_;
  std::shared_ptr<detail::ObjectTable> objects_ = std::make_shared<detail::ObjectTable>();
  template <class T>
  friend class ClassDef;
};

/// A typed handle of a procedure (what Rpc::define returns): its calls take the
/// procedure's own parameter types, so arguments convert as in a local call and a
/// mismatch is a compile error. Valid as long as its Rpc.
template <class R, class... A>
class Procedure<R(A...)> {
 public:
  /// Calls it on `rank`.
  /// @throws as Rpc::call.
  Future<R> call(int rank, A... args) const { return rpc_->template call<R>(rank, name_, args...); }
  /// Calls it on `rank` without a result.
  /// @throws as Rpc::post.
  void post(int rank, A... args) const
    requires std::is_void_v<R>
  {
    rpc_->post(rank, name_, args...);
  }
  /// Calls it on every rank; futures in rank order.
  std::vector<Future<R>> call_all(A... args) const { return rpc_->template call_all<R>(name_, args...); }
  const std::string& name() const { return name_; }

 private:
  friend class Rpc;
  Procedure(Rpc* rpc, std::string name) : rpc_(rpc), name_(std::move(name)) {}
  Rpc* rpc_;
  std::string name_;
};

/// A class whose objects other ranks construct here and call (Rpc::define_class).
template <class T>
class ClassDef {
 public:
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
  friend class Rpc;  // define_class makes them
  ClassDef(Rpc& rpc, std::string name) : rpc_(rpc), name_(std::move(name)) {}
  Rpc& rpc_;
  std::string name_;
};

/// A handle of an object that lives on another rank (Rpc::make). Copyable; copies
/// refer to the same object.
template <class T>
class Remote {
 public:
  /// An empty handle (its calls throw ipc::UsageError).
  Remote() = default;
  /// The rank the object lives on (-1 for an empty handle).
  int rank() const { return rank_; }
  /// The object's number on its rank (0 for an empty handle).
  std::uint64_t id() const { return id_; }
  /// Calls `method` on the object (its member function's exact argument types).
  /// @throws ipc::UsageError on an empty handle or after its Rpc ended, else as Rpc::call; the
  /// future's get() throws ipc::RemoteError when the object was destroyed or the method threw.
  template <class R = void, class... A>
  Future<R> call(const std::string& method, const A&... args) const {
    return rpc()->template call<R>(rank_, cls_ + "::" + method, id_, args...);
  }
  /// Destroys the object on its rank.
  /// @throws as call(); the future's get() throws ipc::RemoteError when it was already destroyed.
  Future<void> destroy() const { return rpc()->template call<void>(rank_, cls_ + "::~", id_); }

 private:
  friend class Rpc;  // make() makes them
  Remote(Rpc* rpc, std::shared_ptr<detail::RpcLink> link, int rank, std::string cls, std::uint64_t id)
      : rpc_(rpc), link_(std::move(link)), rank_(rank), cls_(std::move(cls)), id_(id) {}
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
