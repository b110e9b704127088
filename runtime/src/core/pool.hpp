// Per-thread free lists for the engine's small, frequent allocations (requests of
// non-blocking calls, unexpected messages and their payloads): malloc and free were a
// quarter of the time of a stream of small isends. Blocks freed on another thread join
// that thread's list; each list keeps a bounded number of blocks and returns the rest
// to the heap.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace ipc::detail {

/// Blocks of `Size` bytes; at most `Keep` kept per thread.
template <std::size_t Size, std::size_t Align, std::size_t Keep = 1024>
class FreeList {
 public:
  static void* get() {
    auto& l = list();
    if (!l.blocks.empty()) {
      void* p = l.blocks.back();
      l.blocks.pop_back();
      return p;
    }
    return ::operator new(Size, std::align_val_t(Align));
  }
  static void put(void* p) noexcept {
    auto& l = list();
    if (l.blocks.size() < Keep) {
      try {
        l.blocks.push_back(p);
        return;
      } catch (...) {  // no room to remember it: freed below
      }
    }
    ::operator delete(p, std::align_val_t(Align));
  }

 private:
  struct List {
    std::vector<void*> blocks;
    ~List() {
      for (void* p : blocks) ::operator delete(p, std::align_val_t(Align));
    }
  };
  static List& list() {
    static thread_local List l;
    return l;
  }
};

/// Buffers of any size: FreeLists by size class (powers of two from 128 B to 64 KiB,
/// at most 2 MiB kept of each), larger ones from the heap each time. A stream of eager
/// messages that outrun their receives then allocates nothing and zeroes nothing, and
/// the heap is not trimmed and grown again under it: page faults and zeroing were a
/// fifth of a rank's time with 16 KiB messages sent both ways at once.
class SizeClassPool {
 public:
  static void* get(std::size_t n) {
    std::size_t c = size_class(n);
    if (c > kLargest) return ::operator new(n, std::align_val_t(kAlign));
    return lists()[index(c)].get();
  }
  /// `n`: the size get() was asked for.
  static void put(void* p, std::size_t n) noexcept {
    std::size_t c = size_class(n);
    if (c > kLargest)
      ::operator delete(p, std::align_val_t(kAlign));
    else
      lists()[index(c)].put(p);
  }

 private:
  static constexpr std::size_t kSmallest = 128, kLargest = 64 << 10, kKeep = 2 << 20, kAlign = 16;
  static constexpr std::size_t kClasses = 10;  // 128 B ... 64 KiB
  static_assert(kSmallest << (kClasses - 1) == kLargest);
  static std::size_t size_class(std::size_t n) { return n <= kSmallest ? kSmallest : std::bit_ceil(n); }
  static std::size_t index(std::size_t c) {
    return static_cast<std::size_t>(std::countr_zero(c) - std::countr_zero(kSmallest));
  }
  struct Ops {
    void* (*get)();
    void (*put)(void*) noexcept;
  };
  template <std::size_t... I>
  static constexpr std::array<Ops, sizeof...(I)> make_lists(std::index_sequence<I...>) {
    return {Ops{&FreeList<(kSmallest << I), kAlign, kKeep / (kSmallest << I)>::get,
                &FreeList<(kSmallest << I), kAlign, kKeep / (kSmallest << I)>::put}...};
  }
  static const std::array<Ops, kClasses>& lists() {
    static constexpr std::array<Ops, kClasses> l = make_lists(std::make_index_sequence<kClasses>{});
    return l;
  }
};

}  // namespace ipc::detail
