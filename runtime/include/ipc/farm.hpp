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
#include <span>
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
  /// adaptive, per worker, from 2 (tasks of milliseconds and more) up to 4,096 (tasks
  /// shorter than a message's round trip), so that no worker waits for rank 0, and
  /// no more than about 2 ms of a worker's work at the pace of its last batch (the
  /// balance at the end).
  int in_flight = 0;
};

namespace detail {

using Bytes = std::vector<std::byte>;

/// The farm's tasks and results as bytes, for farm_bytes: the typed farm converts each
/// task straight into the message that carries it and each result straight out of the
/// one that brought it (no vector per task, which cost a trivial task most of its
/// instructions).
struct FarmIo {
  std::size_t count = 0;  // tasks (rank 0)
  /// Appends the bytes of task `i` to `out` (rank 0).
  std::function<void(std::size_t i, Bytes& out)> put_task;
  /// Takes the result of task `i` (rank 0; once per task, in any order).
  std::function<void(std::size_t i, std::span<const std::byte> result)> take_result;
  /// Runs a task and appends its result's bytes to `out` (the workers; rank 0 alone).
  std::function<void(std::span<const std::byte> task, Bytes& out)> work;
};

void farm_bytes(const Communicator& comm, const FarmIo& io, const FarmOptions& opt);

/// Appends the bytes `v` travels as.
template <class T>
void append_bytes(Bytes& out, const T& v) {
  if constexpr (is_resizable<T>::value || RawValue<T>) {
    const void* from;
    std::size_t n;
    if constexpr (is_resizable<T>::value) {
      from = std::ranges::data(v);
      n = std::ranges::size(v) * sizeof(typename T::value_type);
    } else {
      from = &v;
      n = sizeof(T);
    }
    std::size_t at = out.size();
    out.resize(at + n);
    if (n) std::memcpy(out.data() + at, from, n);
  } else {
    VectorSink sink(out);
    OutStream os(&sink);
    cereal::BinaryOutputArchive ar(*os);
    ar(v);
  }
}

template <class T>
T from_bytes(std::span<const std::byte> b) {
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
    try {
      SpanSource src(b.data(), b.size());
      InStream is(&src);
      cereal::BinaryInputArchive ar(*is);
      ar(v);
    } catch (const std::exception& e) {  // cereal::Exception, or a length_error on a huge count
      throw_deserialize_failed(e);
    }
  }
  return v;
}

}  // namespace detail

/// Runs `work` on every task (see the top of this file). Returns, on rank 0, the
/// results in task order; on the other ranks an empty vector.
/// @throws ipc::Error on every rank when a task failed or no worker is left, or when the
/// journal cannot be opened, read or written or was written for another task list (the
/// same message on every rank but for its "rank R on HOST:" origin); ipc::UsageError
/// when opt.in_flight < 0; ipc::PeerLost on a worker when rank 0 is gone; on rank 0,
/// ipc::ProtocolError for a malformed message (e.g. a result that does not match Result's
/// size) and ipc::Truncation when a serialized result does not deserialize as Result (results
/// are read as they arrive: the farm then stops, and the other ranks throw ipc::Error with
/// that message).
template <class Result, class Task, class F>
std::vector<Result> farm(const Communicator& comm, const std::vector<Task>& tasks, F work, FarmOptions opt = {}) {
  static_assert(std::is_invocable_r_v<Result, F&, const Task&>, "ipc::farm: work must take a task and return a Result");
  std::vector<Result> results;
  detail::FarmIo io;
  if (comm.rank() == 0) {
    io.count = tasks.size();
    results.resize(tasks.size());
  }
  io.put_task = [&tasks](std::size_t i, detail::Bytes& out) { detail::append_bytes(out, tasks[i]); };
  io.take_result = [&results](std::size_t i, std::span<const std::byte> b) {
    results[i] = detail::from_bytes<Result>(b);
  };
  io.work = [&work](std::span<const std::byte> t, detail::Bytes& out) {
    detail::append_bytes<Result>(out, work(detail::from_bytes<Task>(t)));
  };
  detail::farm_bytes(comm, io, opt);
  return results;
}

}  // namespace ipc
