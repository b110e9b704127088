// A per-thread free list for the engine's small, frequent allocations (requests of
// non-blocking calls): malloc and free were a quarter of the time of a stream of
// small isends. Blocks freed on another thread join that thread's list; each list
// keeps at most 1024 blocks and returns the rest to the heap.
#pragma once

#include <cstddef>
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

}  // namespace ipc::detail
