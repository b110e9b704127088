// Channels of one node (the compiled half of channel.hpp): a bounded ring of cells in
// shared memory, each with a sequence number (a cell at position p is free for the
// push of p when its sequence is p, holds that push's item when it is p + 1), so that
// pushes and pops of any ranks claim positions with one compare-and-swap and never
// take a cell twice. Host's slice of a shared window, 64-bit words:
//   [0] head  [1] tail  [2] closed  [3] not-empty futex  [4] not-full futex
//   [5] sleepers on not-empty  [6] sleepers on not-full  [7] cells (a power of two)
//   [8 ...] cells: sequence, then the item in whole words
#include "ipc/channel.hpp"

#include "base/errors.hpp"
#include "base/futex.hpp"
#include "ipc/window.hpp"

namespace ipc::detail {

struct ChannelCore {
  Communicator node;
  SharedWindow<std::uint64_t> window;
  std::uint64_t* w = nullptr;
  std::size_t cells = 0, item_bytes = 0, cell_words = 0;
  ChannelCore(const Communicator& n, std::size_t cap, std::size_t item, std::size_t words)
      : node(n), window(n, n.rank() == 0 ? 8 + cap * words : 0), cells(cap), item_bytes(item), cell_words(words) {
    w = window.slice(window.ranks_here().front()).data();
  }
  std::atomic_ref<std::uint64_t> word(std::size_t i) const { return std::atomic_ref<std::uint64_t>(w[i]); }
  std::uint64_t* cell(std::uint64_t pos) const { return w + 8 + (pos & (cells - 1)) * cell_words; }
  std::uint32_t* futex(int which) const { return reinterpret_cast<std::uint32_t*>(&w[3 + which]); }
  std::uint64_t* sleepers(int which) const { return &w[5 + which]; }
  void wake(int which) { base::futex_wake(futex(which), sleepers(which)); }
  // Waits until ready() (true) or the deadline (false); the host's loss is PeerLost.
  template <class Ready>
  bool wait(int which, Ready&& ready, std::chrono::steady_clock::time_point deadline) {
    return base::futex_await(futex(which), sleepers(which), ready, deadline, [&] {
      if (node.rank() != 0 && CommAccess::gone(node, 0))
        throw PeerLost("channel: its host, " + CommAccess::where(node, 0) + ", is gone", CommAccess::job_rank(node, 0));
    });
  }
};

std::shared_ptr<ChannelCore> make_channel(const Communicator& comm, std::size_t capacity, std::size_t item_bytes) {
  if (capacity == 0) throw UsageError("Channel: a capacity of 0");
  Communicator node = comm.split_by_node();
  if (node.size() != comm.size())
    throw UsageError("Channel: the communicator's " + std::to_string(comm.size()) +
                     " ranks are not all on one node (across nodes it is not built yet)");
  std::size_t cap = 2;  // a single cell's sequence could not tell full from free
  while (cap < capacity) cap <<= 1;
  auto c = std::make_shared<ChannelCore>(node, cap, item_bytes, 1 + (item_bytes + 7) / 8);
  if (node.rank() == 0) {
    c->word(7).store(cap);
    for (std::size_t p = 0; p < cap; ++p) std::atomic_ref<std::uint64_t>(*c->cell(p)).store(p);
  }
  c->window.fence();
  return c;
}

int channel_push(ChannelCore& c, const void* item, std::chrono::steady_clock::time_point deadline, bool wait) {
  for (;;) {
    if (c.word(2).load()) return 2;
    std::uint64_t pos = c.word(1).load();
    std::uint64_t* cell = c.cell(pos);
    auto seq = std::atomic_ref<std::uint64_t>(*cell).load(std::memory_order_acquire);
    auto dif = static_cast<std::int64_t>(seq - pos);
    if (dif == 0) {
      if (!c.word(1).compare_exchange_weak(pos, pos + 1)) continue;
      std::memcpy(cell + 1, item, c.item_bytes);
      std::atomic_ref<std::uint64_t>(*cell).store(pos + 1, std::memory_order_release);
      c.wake(0);
      return 0;
    }
    if (dif > 0) continue;  // another push took it: look again
    if (!wait) return 1;    // full
    bool room = c.wait(
        1,
        [&] {
          std::uint64_t p = c.word(1).load();
          return c.word(2).load() != 0 ||
                 std::atomic_ref<std::uint64_t>(*c.cell(p)).load(std::memory_order_acquire) == p;
        },
        deadline);
    if (!room) return 3;
  }
}

int channel_pop(ChannelCore& c, void* item, std::chrono::steady_clock::time_point deadline, bool wait) {
  for (;;) {
    std::uint64_t pos = c.word(0).load();
    std::uint64_t* cell = c.cell(pos);
    auto seq = std::atomic_ref<std::uint64_t>(*cell).load(std::memory_order_acquire);
    auto dif = static_cast<std::int64_t>(seq - (pos + 1));
    if (dif == 0) {
      if (!c.word(0).compare_exchange_weak(pos, pos + 1)) continue;
      std::memcpy(item, cell + 1, c.item_bytes);
      std::atomic_ref<std::uint64_t>(*cell).store(pos + c.cells, std::memory_order_release);
      c.wake(1);
      return 0;
    }
    if (dif > 0) continue;
    if (c.word(2).load()) {  // closed: empty for good unless a push was under way
      std::uint64_t p = c.word(0).load();
      if (std::atomic_ref<std::uint64_t>(*c.cell(p)).load(std::memory_order_acquire) != p + 1) return 2;
      continue;
    }
    if (!wait) return 1;  // empty
    bool some = c.wait(
        0,
        [&] {
          std::uint64_t p = c.word(0).load();
          return c.word(2).load() != 0 ||
                 std::atomic_ref<std::uint64_t>(*c.cell(p)).load(std::memory_order_acquire) == p + 1;
        },
        deadline);
    if (!some) return 3;
  }
}

void channel_close(ChannelCore& c) {
  c.word(2).store(1);
  c.wake(0);
  c.wake(1);
}

bool channel_closed(const ChannelCore& c) { return c.word(2).load() != 0; }
std::size_t channel_capacity(const ChannelCore& c) { return c.cells; }

void throw_closed() { throw ChannelClosed("Channel: pushed after close()"); }

}  // namespace ipc::detail
