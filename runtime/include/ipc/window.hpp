/// @file window.hpp
/// Shared memory as a programming model: one region per node, a slice per rank.
///
///     ipc::SharedWindow<double> w(comm, 1000);     // collective: 1000 doubles per rank
///     for (auto& x : w.local()) x = comm.rank();   // this rank's slice
///     w.fence();                                    // collective: writes visible to all
///     double left = w.slice(comm.rank() - 1)[0];    // a neighbour's slice, read in place
///
/// The ranks of the communicator that share a node map one region, in which each has
/// a slice of the length it asked for (slices one after the other in rank order, each
/// starting on a 64-byte line); ranks on other nodes get their own node's region. A
/// rank reads and writes any slice of its node directly, with loads and stores.
///
/// Memory model. `fence()` is collective over the communicator: every write a rank
/// made to the region before its fence() is visible to every rank of the node after
/// that rank's fence() returns, and no rank returns from fence() before all have
/// entered it. `sync()` is a full memory barrier on this rank alone: it orders this
/// rank's reads and writes of the region against each other, and makes its writes
/// visible to a rank that synchronises with it by other means (a message, a barrier,
/// an atomic below). Without a fence or such synchronisation, concurrent plain writes
/// and reads of the same element are a data race, as between threads: nothing is
/// guaranteed about what is read.
///
/// `fetch_add`, `compare_exchange`, `load` and `store` on an element are atomic
/// (std::atomic_ref, sequentially consistent) for types that std::atomic_ref supports
/// lock-free (integers, pointers' sizes); they may mix with fences and are visible at
/// once. Atomics never tear and are never lost; plain accesses to other elements are
/// not ordered by them unless the atomic's value is used to synchronise (acquire on
/// load, release on store, as std::atomic).
///
/// File-backed: `SharedWindow<T>(comm, count, ipc::WindowFile{"state.win"})` keeps the
/// node's region in that file (on a host's local storage: each node has its own), so a
/// long computation's state survives the job and the next job reopens it. The file
/// starts with a header (magic, format version, element size, element type name, the
/// slices' lengths); reopening with another type, element size or slices is refused
/// with an ipc::UsageError naming the file and what differs. A new file is zeroed.
/// Writes reach the file when the kernel writes the pages back, and at the latest when
/// the last rank unmaps it; `flush()` forces it (msync).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ipc/communicator.hpp"

namespace ipc {

/// Where a file-backed window lives.
struct WindowFile {
  std::string path;
};

namespace detail {

/// The mapped region of one node and where each of its ranks' slices starts.
struct WindowRegion {
  std::byte* base = nullptr;               // the first slice
  std::vector<std::size_t> offsets;        // by node rank: its slice's byte offset
  std::vector<std::size_t> counts;         // by node rank: its slice's length (elements)
  std::vector<int> node_ranks;             // by node rank: its rank in the communicator
  int node_rank = 0;                       // this rank's
  std::shared_ptr<void> keep;              // unmaps at the end
  void (*flush)(const WindowRegion&) = nullptr;
};

/// Collective over `comm`: maps this node's region (a shared segment, or `file`).
std::shared_ptr<WindowRegion> make_window(const Communicator& comm, std::size_t elem_size, std::size_t count,
                                          const std::string& type_name, const WindowFile* file);
[[noreturn]] void window_not_here(int rank, int size);
[[noreturn]] void window_index_out(std::size_t i, std::size_t n);

template <class T>
constexpr std::string_view window_type_name() {
  std::string_view p = __PRETTY_FUNCTION__;
  auto s = p.find("T = ");
  if (s == std::string_view::npos) return p;
  s += 4;
  return p.substr(s, p.find_first_of(";]", s) - s);
}

}  // namespace detail

/// A region of shared memory per node, a slice per rank (see the top of this file).
template <class T>
class SharedWindow {
  static_assert(std::is_trivially_copyable_v<T>, "ipc::SharedWindow: elements must be trivially copyable");

 public:
  /// Collective over `comm`: every rank asks for a slice of `count` elements (counts
  /// may differ). Elements start zeroed.
  /// @throws ipc::Error when the region cannot be made (naming /dev/shm and the size),
  /// ipc::PeerLost when a rank is gone.
  SharedWindow(const Communicator& comm, std::size_t count) : comm_(comm) {
    region_ = detail::make_window(comm, sizeof(T), count, std::string(detail::window_type_name<T>()), nullptr);
  }
  /// The same, kept in `file` (see the top of this file).
  /// @throws ipc::UsageError when the file holds another window (type, element size, slices),
  /// ipc::Error when it cannot be opened or mapped.
  SharedWindow(const Communicator& comm, std::size_t count, const WindowFile& file) : comm_(comm) {
    region_ = detail::make_window(comm, sizeof(T), count, std::string(detail::window_type_name<T>()), &file);
  }

  /// This rank's slice.
  std::span<T> local() const { return at(region_->node_rank); }
  /// The slice of `rank` (a rank of the communicator on this node).
  /// @throws ipc::UsageError for a rank that is not on this node.
  std::span<T> slice(int rank) const {
    for (std::size_t i = 0; i < region_->node_ranks.size(); ++i)
      if (region_->node_ranks[i] == rank) return at(static_cast<int>(i));
    detail::window_not_here(rank, comm_.size());
  }
  /// The ranks of the communicator that share this region, in rank order.
  const std::vector<int>& ranks_here() const { return region_->node_ranks; }

  /// Collective over the communicator: writes before it are visible to all after it.
  void fence() const {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    detail::CommAccess::symmetric_barrier(comm_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  /// A full memory barrier on this rank (see the memory model above).
  void sync() const { std::atomic_thread_fence(std::memory_order_seq_cst); }
  /// Writes a file-backed window's pages to its file now (nothing for a shared one).
  void flush() const {
    if (region_->flush) region_->flush(*region_);
  }

  // Atomics on one element of `rank`'s slice (types std::atomic_ref supports lock-free).
  T load(int rank, std::size_t i) const
    requires std::atomic_ref<T>::is_always_lock_free
  {
    return ref(rank, i).load();
  }
  void store(int rank, std::size_t i, T v) const
    requires std::atomic_ref<T>::is_always_lock_free
  {
    ref(rank, i).store(v);
  }
  /// Adds `v`; returns the value before.
  T fetch_add(int rank, std::size_t i, T v) const
    requires std::atomic_ref<T>::is_always_lock_free && std::is_integral_v<T>
  {
    return ref(rank, i).fetch_add(v);
  }
  /// Sets `desired` if the element equals `expected` (true); else loads it into `expected`.
  bool compare_exchange(int rank, std::size_t i, T& expected, T desired) const
    requires std::atomic_ref<T>::is_always_lock_free
  {
    return ref(rank, i).compare_exchange_strong(expected, desired);
  }

 private:
  std::span<T> at(int node_rank) const {
    auto k = static_cast<std::size_t>(node_rank);
    return {reinterpret_cast<T*>(region_->base + region_->offsets[k]), region_->counts[k]};
  }
  std::atomic_ref<T> ref(int rank, std::size_t i) const {
    auto s = slice(rank);
    if (i >= s.size()) detail::window_index_out(i, s.size());
    return std::atomic_ref<T>(s[i]);
  }

  Communicator comm_;
  std::shared_ptr<detail::WindowRegion> region_;
};

}  // namespace ipc
