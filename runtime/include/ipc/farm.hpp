/// @file farm.hpp
/// A task farm: rank 0 hands tasks to the other ranks as they become free and
/// collects the results, in task order.
///
///     std::vector<Params> tasks = ...;                   // needed on rank 0 only
///     auto results = ipc::farm<Result>(rt.world(), tasks, [](const Params& p) {
///       return simulate(p);                             // runs on ranks 1..n-1
///     }, {.progress = true, .journal = "sweep.journal"});
///     // rank 0: results[i] belongs to tasks[i]; other ranks: empty
///
/// - Dynamic load balancing: each worker has `in_flight` tasks at a time (adaptive by
///   default) and gets the next one as soon as it returns a result, so fast workers do more.
/// - A worker that dies (run with `ipcrun --keep-going`) has its tasks handed to the
///   others; the farm fails only when no worker is left.
/// - A task that throws stops the farm: the other tasks in flight finish, the workers
///   stop, and every rank throws ipc::Error naming the task, the rank and the
///   exception (rank 0's failure, e.g. of its journal, is every rank's as well).
/// - `progress`: rank 0 prints done/total, the rate and the time left to stderr, at
///   most once a second.
/// - `journal`: rank 0 appends every result to this file; a rerun of the same task
///   list skips the tasks found there (a task list that differs is an error).
/// - A job of one rank runs the tasks itself.
///
/// Collective: every rank calls it, in the same order as its other collectives.
/// Tasks and results travel as raw bytes when they are raw values (or vectors and
/// strings of them), else through Cereal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "ipc/communicator.hpp"
#include "ipc/detail/archive.hpp"
#include "ipc/value.hpp"

namespace ipc {

/// Options of ipc::farm.
struct FarmOptions {
  /// Print progress on rank 0 (stderr, at most once a second).
  bool progress = false;
  /// File that keeps results across runs ("": none).
  std::string journal;
  /// Tasks a worker holds at once (the next one is there when it finishes one); 0:
  /// adaptive, per worker, from 2 (tasks of milliseconds and more) up to 64 (tasks
  /// shorter than a message's round trip), so that no worker waits for rank 0.
  int in_flight = 0;
};

namespace detail {

using Bytes = std::vector<std::byte>;

/// The farm over bytes: on rank 0 returns the results of `tasks` in order; on the
/// other ranks runs `work` on what rank 0 sends and returns nothing.
std::vector<Bytes> farm_bytes(const Communicator& comm, const std::vector<Bytes>& tasks,
                              const std::function<Bytes(const Bytes&)>& work, const FarmOptions& opt);

template <class T>
Bytes to_bytes(const T& v) {
  if constexpr (is_resizable<T>::value) {
    Bytes b(std::ranges::size(v) * sizeof(typename T::value_type));
    if (!b.empty()) std::memcpy(b.data(), std::ranges::data(v), b.size());
    return b;
  } else if constexpr (RawValue<T>) {
    Bytes b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
  } else {
    return std::move(*serialize(v));
  }
}

template <class T>
T from_bytes(const Bytes& b) {
  T v{};
  if constexpr (is_resizable<T>::value) {
    using E = typename T::value_type;
    if (b.size() % sizeof(E) != 0) throw ProtocolError("farm: a value of " + std::to_string(b.size()) + " bytes");
    v.resize(b.size() / sizeof(E));
    if (!b.empty()) std::memcpy(std::ranges::data(v), b.data(), b.size());
  } else if constexpr (RawValue<T>) {
    if (b.size() != sizeof(T)) throw ProtocolError("farm: a value of " + std::to_string(b.size()) + " bytes");
    std::memcpy(&v, b.data(), sizeof(T));
  } else {
    deserialize_or_throw(b, v);
  }
  return v;
}

}  // namespace detail

/// Runs `work` on every task (see the top of this file). Returns, on rank 0, the
/// results in task order; on the other ranks an empty vector.
/// @throws ipc::Error on every rank when a task failed or no worker is left, or when the
/// journal cannot be opened, read or written or was written for another task list (the
/// same message on every rank but for its "rank R on HOST:" origin); ipc::UsageError
/// when opt.in_flight < 0; ipc::PeerLost on a worker when rank 0 is gone; ipc::ProtocolError
/// for a malformed message (e.g. a result that does not match Result's size), ipc::Truncation
/// when a serialized result does not deserialize as Result.
template <class Result, class Task, class F>
std::vector<Result> farm(const Communicator& comm, const std::vector<Task>& tasks, F work, FarmOptions opt = {}) {
  static_assert(std::is_invocable_r_v<Result, F&, const Task&>, "ipc::farm: work must take a task and return a Result");
  std::vector<detail::Bytes> in;
  if (comm.rank() == 0) {
    in.reserve(tasks.size());
    for (auto& t : tasks) in.push_back(detail::to_bytes(t));
  }
  auto out = detail::farm_bytes(
      comm, in,
      [&work](const detail::Bytes& b) { return detail::to_bytes<Result>(work(detail::from_bytes<Task>(b))); }, opt);
  std::vector<Result> results;
  results.reserve(out.size());
  for (auto& b : out) results.push_back(detail::from_bytes<Result>(b));
  return results;
}

}  // namespace ipc
