// Channels (the compiled half of channel.hpp).
//
// On one node: a bounded ring of cells in
// shared memory, each with a sequence number (a cell at position p is free for the
// push of p when its sequence is p, holds that push's item when it is p + 1), so that
// pushes and pops of any ranks claim positions with one compare-and-swap and never
// take a cell twice. Host's slice of a shared window, 64-bit words:
//   [0] head  [1] tail  [2] closed  [3] not-empty futex  [4] not-full futex
//   [5] sleepers on not-empty  [6] sleepers on not-full  [7] cells (a power of two)
//   [8 + 8r]  node rank r's intent: the position it is claiming or holds, and whether
//             to push or pop (0: none), each on a line of its own
//   [8 + 8n ...] cells: sequence, then the item in whole words
//
// A rank that dies between claiming a cell and publishing it (a push's item, a pop's
// freeing) would leave the cell stuck, and every later item behind it. A rank waiting
// on such a cell looks, every 100 ms asleep, for a claim that no live rank's intent
// holds: its claimant is dead, and the waiter repairs the cell with a compare-and-swap
// (which fails, harmlessly, if the claimant did finish): an unpublished push becomes a
// cell marked skipped (kSkip), which the next pop frees without returning it; an
// unfreed pop's cell becomes free. A rank sets its intent before its compare-and-swap
// and clears it after publishing (or after losing the race), so a live claimant is
// always seen.
//
// Across nodes the home rank's queue (api/home.hpp) holds the items (at most the
// capacity), the pushes waiting for room (with their items) and the pops waiting for
// an item, each in arrival order. Pops wait only while no item is held, so a push
// hands its item straight to the first waiting pop; a pop that makes room lets the
// first waiting push in.
#include "base/copy.hpp"
#include "ipc/channel.hpp"

#include <deque>
#include <thread>

#include "api/home.hpp"
#include "base/errors.hpp"
#include "base/futex.hpp"
#include "ipc/window.hpp"
#include "wire/bytes.hpp"

namespace ipc::detail {

constexpr std::uint64_t kSkip = std::uint64_t{1} << 63;  // in a sequence: a dead push's cell
constexpr std::uint64_t kPushing = 1, kPopping = 2;

struct LocalRing {
  Communicator node;
  SharedWindow<std::uint64_t> window;
  std::uint64_t* w = nullptr;
  std::size_t cells = 0, item_bytes = 0, cell_words = 0, ranks = 0, first_cell = 0;
  std::size_t me = 0;
  LocalRing(const Communicator& n, std::size_t cap, std::size_t item, std::size_t words)
      : node(n),
        window(n, n.rank() == 0 ? 8 + 8 * static_cast<std::size_t>(n.size()) + cap * words : 0),
        cells(cap),
        item_bytes(item),
        cell_words(words),
        ranks(static_cast<std::size_t>(n.size())),
        first_cell(8 + 8 * ranks),
        me(static_cast<std::size_t>(n.rank())) {
    w = window.slice(window.ranks_here().front()).data();
  }
  std::atomic_ref<std::uint64_t> word(std::size_t i) const { return std::atomic_ref<std::uint64_t>(w[i]); }
  std::uint64_t* cell(std::uint64_t pos) const { return w + first_cell + (pos & (cells - 1)) * cell_words; }
  std::atomic_ref<std::uint64_t> seq(std::uint64_t pos) const { return std::atomic_ref<std::uint64_t>(*cell(pos)); }
  std::atomic_ref<std::uint64_t> intent(std::size_t r) const { return word(8 + 8 * r); }
  void intend(std::uint64_t pos, std::uint64_t what) { intent(me).store(pos << 2 | what, std::memory_order_relaxed); }
  void done_intending() { intent(me).store(0, std::memory_order_relaxed); }

  // Whether a rank that is alive holds (or is claiming) position `pos` for `what`.
  bool live_claimant(std::uint64_t pos, std::uint64_t what) const {
    for (std::size_t r = 0; r < ranks; ++r)
      if (intent(r).load() == (pos << 2 | what) && !CommAccess::gone(node, static_cast<int>(r))) return true;
    return false;
  }
  // A waiting pop's repair: the cell at the head, claimed by a push that no live rank
  // holds, becomes skipped.
  void repair_push() {
    std::uint64_t pos = word(0).load();
    std::uint64_t s = seq(pos).load();
    if (s != pos || word(1).load() <= pos || live_claimant(pos, kPushing)) return;
    if (seq(pos).compare_exchange_strong(s, (pos + 1) | kSkip)) wake(0);
  }
  // A waiting push's repair: the cell at the tail, taken by a pop that no live rank
  // holds, becomes free.
  void repair_pop() {
    std::uint64_t pos = word(1).load();
    if (pos < cells) return;
    std::uint64_t taken = pos - cells, s = seq(pos).load();
    if (s != taken + 1 || word(0).load() <= taken || live_claimant(taken, kPopping)) return;
    if (seq(pos).compare_exchange_strong(s, pos)) wake(1);
  }
  std::uint32_t* futex(int which) const { return reinterpret_cast<std::uint32_t*>(&w[3 + which]); }
  std::uint64_t* sleepers(int which) const { return &w[5 + which]; }
  void wake(int which) { base::futex_wake(futex(which), sleepers(which)); }
  // Waits until ready() (true) or the deadline (false); the host's loss is PeerLost.
  // Between naps, repairs what a dead rank left stuck (which: 0 waits for an item,
  // 1 for room).
  template <class Ready>
  bool wait(int which, Ready&& ready, std::chrono::steady_clock::time_point deadline) {
    return base::futex_await(futex(which), sleepers(which), ready, deadline, [&] {
      if (node.rank() != 0 && CommAccess::gone(node, 0))
        throw PeerLost("channel: its host, " + CommAccess::where(node, 0) + ", is gone", CommAccess::job_rank(node, 0));
      if (which == 0)
        repair_push();
      else
        repair_pop();
    });
  }
};

// The home's state of a channel whose ranks span nodes.
class ChannelHome final : public HomeState {
 public:
  enum Op : std::uint8_t { kPush, kPop, kClose, kClosed };
  // Answers: a status byte (channel_push's and channel_pop's codes), then a popped item.

  explicit ChannelHome(std::size_t capacity) : capacity_(capacity) {}

  void request(Home& home, int rank, std::uint32_t id, std::uint8_t op, std::span<const std::byte> p) override {
    bool wait = !p.empty() && p[0] != std::byte{0};
    switch (op) {
      case kPush: {
        std::vector<std::byte> item(p.begin() + (p.empty() ? 0 : 1), p.end());
        if (closed_) {
          status(home, rank, id, 2);
        } else if (!pops_.empty()) {  // nothing is held: straight to the first waiting pop
          Waiting w = pops_.front();
          pops_.pop_front();
          give(home, w.rank, w.id, item);
          status(home, rank, id, 0);
        } else if (items_.size() < capacity_) {
          items_.push_back(std::move(item));
          status(home, rank, id, 0);
        } else if (!wait) {
          status(home, rank, id, 1);
        } else {
          pushes_.push_back({{rank, id}, std::move(item)});
        }
        break;
      }
      case kPop:
        if (!items_.empty()) {
          give(home, rank, id, items_.front());
          items_.pop_front();
          if (!pushes_.empty()) {  // room for the first waiting push
            items_.push_back(std::move(pushes_.front().item));
            status(home, pushes_.front().who.rank, pushes_.front().who.id, 0);
            pushes_.pop_front();
          }
        } else if (closed_) {
          status(home, rank, id, 2);
        } else if (!wait) {
          status(home, rank, id, 1);
        } else {
          pops_.push_back({rank, id});
        }
        break;
      case kClose:
        closed_ = true;
        for (auto& w : pops_) status(home, w.rank, w.id, 2);
        for (auto& w : pushes_) status(home, w.who.rank, w.who.id, 2);
        pops_.clear();
        pushes_.clear();
        status(home, rank, id, 0);
        break;
      case kClosed:
        status(home, rank, id, closed_ ? 1 : 0);
        break;
      default:
        break;
    }
  }

  void withdraw(Home& home, int rank, std::uint32_t id) override {
    auto mine = [&](const Waiting& w) { return w.rank == rank && w.id == id; };
    std::size_t n = std::erase_if(pops_, mine) + std::erase_if(pushes_, [&](const Push& p) { return mine(p.who); });
    if (n > 0) status(home, rank, id, 3);
  }

  void gone(Home&, int rank) override {  // what it pushed stays; its waiting calls end
    std::erase_if(pops_, [rank](const Waiting& w) { return w.rank == rank; });
    std::erase_if(pushes_, [rank](const Push& p) { return p.who.rank == rank; });
  }

 private:
  struct Waiting {
    int rank;
    std::uint32_t id;
  };
  struct Push {
    Waiting who;
    std::vector<std::byte> item;
  };
  static void status(Home& home, int rank, std::uint32_t id, int code) {
    auto b = static_cast<std::byte>(code);
    home.answer(rank, id, std::span<const std::byte>(&b, 1));
  }
  static void give(Home& home, int rank, std::uint32_t id, const std::vector<std::byte>& item) {
    std::vector<std::byte> out;
    out.reserve(1 + item.size());
    out.push_back(std::byte{0});
    out.insert(out.end(), item.begin(), item.end());
    home.answer(rank, id, out);
  }

  std::size_t capacity_;
  bool closed_ = false;
  std::deque<std::vector<std::byte>> items_;
  std::deque<Waiting> pops_;
  std::deque<Push> pushes_;
};

struct ChannelCore {
  std::size_t cells = 0, item_bytes = 0;
  std::unique_ptr<LocalRing> ring;
  std::unique_ptr<Home> home;
};

std::shared_ptr<ChannelCore> make_channel(const Communicator& comm, std::size_t capacity, std::size_t item_bytes) {
  if (capacity == 0) throw UsageError("Channel: a capacity of 0");
  std::size_t cap = 2;  // a single cell's sequence could not tell full from free
  while (cap < capacity) cap <<= 1;
  auto c = std::make_shared<ChannelCore>();
  c->cells = cap;
  c->item_bytes = item_bytes;
  auto node = tools_node(comm);
  if (!node) {
    c->home = std::make_unique<Home>(comm, comm.rank() == 0 ? std::make_unique<ChannelHome>(cap) : nullptr, "channel");
    return c;
  }
  c->ring = std::make_unique<LocalRing>(*node, cap, item_bytes, 1 + (item_bytes + 7) / 8);
  auto& r = *c->ring;
  if (node->rank() == 0) {
    r.word(7).store(cap);
    for (std::size_t p = 0; p < cap; ++p) r.seq(p).store(p);
  }
  r.window.fence();
  return c;
}

namespace {
std::span<const std::byte> wait_flag(bool wait) {
  static constexpr std::byte flags[2] = {std::byte{0}, std::byte{1}};
  return {&flags[wait ? 1 : 0], 1};
}
}  // namespace

int channel_push(ChannelCore& core, const void* item, std::chrono::steady_clock::time_point deadline, bool wait) {
  if (core.home) {
    std::vector<std::byte> p(1 + core.item_bytes);
    p[0] = wait_flag(wait)[0];
    base::copy_bytes(p.data() + 1, item, core.item_bytes);
    auto a = core.home->ask(ChannelHome::kPush, p, wait ? deadline : std::chrono::steady_clock::time_point::max());
    return a.empty() ? 2 : static_cast<int>(a[0]);
  }
  auto& c = *core.ring;
  for (;;) {
    if (c.word(2).load()) return 2;
    std::uint64_t pos = c.word(1).load();
    std::uint64_t* cell = c.cell(pos);
    auto seq = c.seq(pos).load(std::memory_order_acquire) & ~kSkip;
    auto dif = static_cast<std::int64_t>(seq - pos);
    if (dif == 0) {
      c.intend(pos, kPushing);
      if (!c.word(1).compare_exchange_weak(pos, pos + 1)) {
        c.done_intending();
        continue;
      }
      base::copy_bytes(cell + 1, item, c.item_bytes);
      c.seq(pos).store(pos + 1, std::memory_order_release);
      c.done_intending();
      c.wake(0);
      return 0;
    }
    if (dif > 0) continue;  // another push took it: look again
    if (!wait) return 1;    // full
    bool room = c.wait(
        1,
        [&] {
          std::uint64_t p = c.word(1).load();
          return c.word(2).load() != 0 || c.seq(p).load(std::memory_order_acquire) == p;
        },
        deadline);
    if (!room) return 3;
  }
}

int channel_pop(ChannelCore& core, void* item, std::chrono::steady_clock::time_point deadline, bool wait) {
  if (core.home) {
    auto a = core.home->ask(ChannelHome::kPop, wait_flag(wait), wait ? deadline : std::chrono::steady_clock::time_point::max());
    int status = a.empty() ? 2 : static_cast<int>(a[0]);
    if (status == 0 && core.item_bytes) {
      if (a.size() != 1 + core.item_bytes) throw ProtocolError("channel: an item of " + std::to_string(a.size() - 1) +
                                                             " bytes from its home, not " + std::to_string(core.item_bytes));
      base::copy_bytes(item, a.data() + 1, core.item_bytes);
    }
    return status;
  }
  auto& c = *core.ring;
  for (;;) {
    std::uint64_t pos = c.word(0).load();
    std::uint64_t* cell = c.cell(pos);
    auto raw = c.seq(pos).load(std::memory_order_acquire);
    auto dif = static_cast<std::int64_t>((raw & ~kSkip) - (pos + 1));
    if (dif == 0) {
      c.intend(pos, kPopping);
      if (!c.word(0).compare_exchange_weak(pos, pos + 1)) {
        c.done_intending();
        continue;
      }
      bool skipped = raw & kSkip;  // a dead push's cell: freed, nothing returned
      if (!skipped) base::copy_bytes(item, cell + 1, c.item_bytes);
      c.seq(pos).store(pos + c.cells, std::memory_order_release);
      c.done_intending();
      c.wake(1);
      if (skipped) continue;
      return 0;
    }
    if (dif > 0) continue;
    if (c.word(2).load()) {  // closed: empty for good unless a push is under way
      std::uint64_t p = c.word(0).load();
      if ((c.seq(p).load(std::memory_order_acquire) & ~kSkip) == p + 1) continue;  // published now
      if (c.word(1).load() <= p) return 2;  // nothing claimed beyond the head
      c.repair_push();  // claimed: wait for its push to publish (or repair, if it died)
      std::this_thread::yield();
      continue;
    }
    if (!wait) return 1;  // empty
    bool some = c.wait(
        0,
        [&] {
          std::uint64_t p = c.word(0).load();
          return c.word(2).load() != 0 || (c.seq(p).load(std::memory_order_acquire) & ~kSkip) == p + 1;
        },
        deadline);
    if (!some) return 3;
  }
}

void channel_close(ChannelCore& core) {
  if (core.home) {
    core.home->ask(ChannelHome::kClose, {});
    return;
  }
  auto& c = *core.ring;
  c.word(2).store(1);
  c.wake(0);
  c.wake(1);
}

bool channel_closed(const ChannelCore& core) {
  if (core.home) {
    auto a = core.home->ask(ChannelHome::kClosed, {});
    return !a.empty() && a[0] != std::byte{0};
  }
  return core.ring->word(2).load() != 0;
}
std::size_t channel_capacity(const ChannelCore& c) { return c.cells; }

void throw_closed() { throw ChannelClosed("Channel: pushed after close()"); }

}  // namespace ipc::detail
