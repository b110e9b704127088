// A per-thread free list for the engine's small, frequent allocations (requests of
// non-blocking calls): malloc and free were a quarter of the time of a stream of
// small isends. Blocks freed on another thread join that thread's list; each list
// keeps at most 1024 blocks and returns the rest to the heap.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace ipc::detail {

template <std::size_t Size, std::size_t Align>
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
  static void put(void* p) {
    auto& l = list();
    if (l.blocks.size() < 1024)
      l.blocks.push_back(p);
    else
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

/// For std::allocate_shared: single objects come from the free list.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n == 1) return static_cast<T*>(FreeList<sizeof(T), alignof(T)>::get());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    if (n == 1)
      FreeList<sizeof(T), alignof(T)>::put(p);
    else
      std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const {
    return true;
  }
};

}  // namespace ipc::detail
