#include "collectives/node_group.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <new>
#include <vector>

#include "base/names.hpp"
#include "core/engine.hpp"
#include "base/copy.hpp"
#include "base/errors.hpp"
#include "base/params.hpp"

namespace ipc::detail {
namespace {

// memcpy and memmove that take empty ranges at null pointers (a collective of 0 bytes),
// at the same speed at every offset between the two (base/copy.hpp).
void mem_copy(void* to, const void* from, std::size_t n) { base::copy_bytes(to, from, n); }
void mem_move(void* to, const void* from, std::size_t n) { base::move_bytes(to, from, n); }

constexpr std::uint64_t kMagic = 0x31707267637069ull;  // "ipcgrp1"
constexpr std::size_t kLine = 64;
constexpr std::uint32_t kCells = 32;  // small contributions in flight per rank
constexpr std::size_t kPieceMax = 1024;

struct GroupHeader {
  std::uint64_t magic;
  std::uint32_t ranks;
  std::uint32_t pad;
  std::uint64_t slot_bytes;
  alignas(kLine) std::atomic<std::int32_t> sleepers;  // > 0: writers ring sleeping ranks' doorbells
};
static_assert(sizeof(GroupHeader) == 2 * kLine);

std::size_t segment_bytes(int ranks, std::size_t slot) {
  auto n = static_cast<std::size_t>(ranks);
  return sizeof(GroupHeader) + n * kLine * (1 + kCells) + (2 * n + 2) * slot;
}

GroupHeader* header_of(std::byte* base) { return reinterpret_cast<GroupHeader*>(base); }

// Phases are 64-bit and only grow: a counter not written for a long time never looks
// ahead of one that was.
bool reached(std::uint64_t value, std::uint64_t k) { return value >= k; }

}  // namespace

struct NodeGroup::Line {
  std::atomic<std::uint64_t> arrive{0};
  std::atomic<std::uint64_t> mid{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint32_t> sleeping{0};  // > 0: the rank sleeps; writers ring its doorbell
  std::atomic<std::uint32_t> rung{0};      // 1: rung since it last woke (no ring needed)
};
static_assert(sizeof(NodeGroup::Line) <= kLine);

struct NodeGroup::Cell {
  std::atomic<std::uint64_t> phase{0};
  std::byte data[kInline];
};
static_assert(sizeof(NodeGroup::Cell) == kLine);

// ---------------------------------------------------------------------------------
// Segment

NodeSegment NodeSegment::create(const std::string& name, int ranks, std::size_t slot_bytes) {
  NodeSegment s;
  // Pages appear on first use: a job that never runs a large collective never
  // touches its slots.
  s.map_ = base::Mapping::create(name, segment_bytes(ranks, slot_bytes), false);
  auto* h = new (s.base()) GroupHeader{};
  h->ranks = static_cast<std::uint32_t>(ranks);
  h->slot_bytes = slot_bytes;
  h->sleepers.store(0);
  std::byte* lines = s.base() + sizeof(GroupHeader);
  for (int r = 0; r < ranks; ++r) new (lines + static_cast<std::size_t>(r) * kLine) NodeGroup::Line{};
  std::byte* cells = lines + static_cast<std::size_t>(ranks) * kLine;
  for (std::size_t c = 0; c < static_cast<std::size_t>(ranks) * kCells; ++c) new (cells + c * kLine) NodeGroup::Cell{};
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kMagic;
  return s;
}

NodeSegment NodeSegment::open(const std::string& name, int ranks) {
  NodeSegment s;
  s.map_ = base::Mapping::open(name, sizeof(GroupHeader), false);
  auto* h = header_of(s.base());
  if (h->magic != kMagic || h->ranks != static_cast<std::uint32_t>(ranks) ||
      segment_bytes(ranks, h->slot_bytes) != s.map_.size())
    throw Error("shm: segment " + name + " is not the node group of " + std::to_string(ranks) + " ranks");
  return s;
}

std::size_t node_slot_bytes(int ranks) {
  std::string v = base::param("IPC_SHM_COLL");
  if (v == "auto") {
    // 256 KiB slots (measured on 2 to 8 ranks: a 1 MiB allreduce is fastest in
    // chunks of 256 to 512 KiB), less beyond 33 ranks to keep a node's segment within
    // 17 MiB of address space (pages appear only where used), at least 16 KiB.
    std::size_t s = 256 * 1024;
    while (s > 16 * 1024 && segment_bytes(ranks, s) > (16u << 20) + (1u << 20)) s /= 2;
    return std::max(s, kLine * static_cast<std::size_t>(ranks));
  }
  auto n = base::param_int("IPC_SHM_COLL");  // bytes
  if (n <= 0) return 0;
  // Round up to whole lines, at least one line per rank (all-to-all pieces).
  auto s = static_cast<std::size_t>(n);
  s = std::max(s, kLine * static_cast<std::size_t>(ranks));
  return (s + kLine - 1) / kLine * kLine;
}

// ---------------------------------------------------------------------------------
// Group

NodeGroup::NodeGroup(Engine& engine, NodeSegment segment, int rank, int size, const std::string& job,
                     const base::Doorbell& bell, std::vector<int> members)
    : engine_(engine), seg_(std::move(segment)), rank_(rank), size_(size), bell_(bell), members_(std::move(members)) {
  for (int q = 0; q < size_; ++q) {
    int j = members_.empty() ? q : members_[static_cast<std::size_t>(q)];
    bells_.push_back(base::Doorbell::Address::of(base::doorbell_name(job, j)));
  }
  slot_bytes_ = header_of(seg_.base())->slot_bytes;
  // Pieces of at most 1 KiB: the 32 of them lie in 8 pages of the pair, so that a job
  // of small collectives touches little of it.
  piece_bytes_ = std::min(kPieceMax, 2 * slot_bytes_ / kCells / kLine * kLine);
  auto n = static_cast<std::size_t>(size_);
  lines_ = seg_.base() + sizeof(GroupHeader);
  cells_ = lines_ + n * kLine;
  slots_ = cells_ + n * kCells * kLine;
}

NodeGroup::Line& NodeGroup::line(int r) const {
  return *reinterpret_cast<Line*>(lines_ + static_cast<std::size_t>(r) * kLine);
}

NodeGroup::Cell& NodeGroup::cell(int r, Phase k) const {
  return *reinterpret_cast<Cell*>(cells_ + (static_cast<std::size_t>(r) * kCells + k % kCells) * kLine);
}

std::byte* NodeGroup::slot(int r, Phase k) const {
  return slots_ + (static_cast<std::size_t>(r) * 2 + (k & 1)) * slot_bytes_;
}

std::byte* NodeGroup::result(Phase k) const {
  return slots_ + (2 * static_cast<std::size_t>(size_) + (k & 1)) * slot_bytes_;
}

// A sleeping rank is rung once until it wakes (a ring is a system call: on a node with
// more ranks than CPUs, a root that runs ahead of ranks waiting for a CPU rang each of
// them at every phase). The rank clears `rung` as it wakes, before it looks at its flag
// again (disarm), so a post that skipped its ring is in view then.
void NodeGroup::post(std::atomic<std::uint64_t>& flag, Phase k) {
  flag.store(k, std::memory_order_seq_cst);
  if (header_of(seg_.base())->sleepers.load(std::memory_order_seq_cst) == 0) return;
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    Line& l = line(q);
    if (l.sleeping.load(std::memory_order_seq_cst) > 0 && l.rung.load(std::memory_order_relaxed) == 0 &&
        l.rung.exchange(1, std::memory_order_seq_cst) == 0)
      bell_.ring(bells_[static_cast<std::size_t>(q)]);
  }
}

// The engine's one waiter: it polls the point-to-point transports meanwhile (a late
// rank may be waiting for this one's rendezvous data), yields and sleeps by the job's
// wait policy, and while asleep looks for ranks that died every 100 ms. Before it
// sleeps, this rank says so in its line, so that writers ring its doorbell.
void NodeGroup::wait_for(const std::atomic<std::uint64_t>& flag, Phase k, int rank) {
  if (reached(flag.load(std::memory_order_acquire), k)) return;
  struct Announce final : Engine::SleepGuard {
    GroupHeader* h;
    Line& me;
    const std::atomic<std::uint64_t>& flag;
    Phase k;
    Announce(GroupHeader* hh, Line& l, const std::atomic<std::uint64_t>& f, Phase kk, const base::Doorbell& b,
             const base::Doorbell::Address& a)
        : h(hh), me(l), flag(f), k(kk), bell(b), self(a) {
      in_group = true;
    }
    bool arm() override {
      h->sleepers.fetch_add(1, std::memory_order_seq_cst);
      me.sleeping.fetch_add(1, std::memory_order_seq_cst);
      // A ring that came after this rank last woke may have been taken meanwhile by
      // another wait of the engine's: writers are to ring again from here on.
      me.rung.store(0, std::memory_order_seq_cst);
      return !reached(flag.load(std::memory_order_seq_cst), k);
    }
    void disarm() override {
      me.sleeping.fetch_sub(1, std::memory_order_seq_cst);
      h->sleepers.fetch_sub(1, std::memory_order_seq_cst);
      // A ring this thread's wake-up took may have been meant for another thread of
      // this rank that sleeps here still: it is woken to look (writers skipped it).
      if (me.rung.exchange(0, std::memory_order_seq_cst) != 0 && me.sleeping.load(std::memory_order_seq_cst) > 0)
        bell.ring(self);
    }
    const base::Doorbell& bell;
    const base::Doorbell::Address& self;
  } announce(header_of(seg_.base()), line(rank_), flag, k, bell_, bells_[static_cast<std::size_t>(rank_)]);
  const int first = rank < 0 ? 0 : rank, last = rank < 0 ? size_ - 1 : rank;  // whose loss fails the wait
  engine_.wait_until(
      [&] {
        if (reached(flag.load(std::memory_order_acquire), k)) return true;
        for (int q = first; q <= last; ++q) {
          int j = members_.empty() ? q : members_[static_cast<std::size_t>(q)];
          if (q != rank_ && engine_.gone(j)) std::rethrow_exception(engine_.lost_error(op_, j));
        }
        return false;
      },
      // No completion makes it true (writers ring: post()): keyed on the flag, which
      // nothing completes, so that the rank's completions do not wake it; and no frame
      // (wants none), so that shared memory wakes it only for frames that need the
      // rank to act.
      std::chrono::steady_clock::time_point::max(), &announce, 64, &flag, 0);
}

NodeGroup::Place NodeGroup::place_for(std::size_t bytes) const {
  if (bytes <= kInline) return Place::cell;
  return bytes <= piece_bytes_ ? Place::piece : Place::slot;
}

std::size_t NodeGroup::capacity(Place w) const {
  return w == Place::cell ? kInline : w == Place::piece ? piece_bytes_ : slot_bytes_;
}

void NodeGroup::before_write(Phase k, Place w) {
  Phase back = w == Place::slot ? 2 : kCells;
  Phase need = k > back ? k - back : 0;  // 0: the buffer's first use
  // Pieces and slots share each rank's slot pair: a phase of the other kind may still
  // be read, up to the one just before.
  if (w != Place::cell) {
    if (pair_use_ != Place::cell && pair_use_ != w) need = k - 1;
    pair_use_ = w;
  }
  if (need == 0) return;
  if (reached(known_done_, need)) return;
  Phase least = k - 1;
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    wait_for(line(q).done, need, q);
    Phase d = line(q).done.load(std::memory_order_acquire);
    if (!reached(d, least)) least = d;
  }
  known_done_ = least;
}

void NodeGroup::saw_all(Phase k) {
  if (k - 1 > known_done_) known_done_ = k - 1;
}

std::byte* NodeGroup::data(int r, Phase k, Place w) const {
  if (w == Place::cell) return cell(r, k).data;
  if (w == Place::piece) return slot(r, 0) + (k % kCells) * piece_bytes_;  // slot(r, 0): the pair's start
  return slot(r, k);
}

std::byte* NodeGroup::open_own(Phase k, Place w) {
  before_write(k, w);
  return data(rank_, k, w);
}

void NodeGroup::publish(Phase k, Place w) { post(w == Place::slot ? line(rank_).arrive : cell(rank_, k).phase, k); }

const std::byte* NodeGroup::contribution(int q, Phase k, Place w) {
  if (q == rank_) return data(q, k, w);
  if (w != Place::slot) {
    wait_for(cell(q, k).phase, k, q);
    return data(q, k, w);
  }
  wait_for(line(q).arrive, k, q);
  return slot(q, k);
}

void NodeGroup::finish(Phase k) { post(line(rank_).done, k); }

void NodeGroup::barrier(bool released) {
  op_ = "barrier with";
  Phase k = next_phase();
  if (released && rank_ != 0) {
    publish(k, Place::slot);  // the arrive flag, no data
    // Rank 0's arrival is the release: all have arrived. A rank lost meanwhile fails
    // this wait too (rank 0 may go on without releasing).
    wait_for(line(0).arrive, k, -1);
  } else {
    if (!released) publish(k, Place::slot);
    for (int q = 0; q < size_; ++q)
      if (q != rank_) wait_for(line(q).arrive, k, q);
    if (released) publish(k, Place::slot);
  }
  saw_all(k);
  finish(k);
}

void NodeGroup::bcast(void* data, std::size_t bytes, int root) {
  op_ = "bcast with";
  auto* d = static_cast<std::byte*>(data);
  const Place w = place_for(bytes);
  const std::size_t step = capacity(w);
  std::size_t off = 0;
  do {  // one phase per slot's worth (at least one: every rank counts the same phases)
    std::size_t n = std::min(step, bytes - off);
    Phase k = next_phase();
    if (rank_ == root) {
      mem_copy(open_own(k, w), d + off, n);
      publish(k, w);
    } else {
      mem_copy(d + off, contribution(root, k, w), n);
    }
    finish(k);
    off += n;
  } while (off < bytes);
}

// As bcast, each rank copying only its own block out of each slot's worth.
void NodeGroup::scatter(const void* in, std::size_t block, void* out, int root) {
  op_ = "scatter with";
  auto* i = static_cast<const std::byte*>(in);
  auto* o = static_cast<std::byte*>(out);
  const std::size_t total = block * static_cast<std::size_t>(size_);
  const Place w = place_for(total);
  const std::size_t step = capacity(w);
  const std::size_t mine = block * static_cast<std::size_t>(rank_);
  std::size_t off = 0;
  do {
    std::size_t n = std::min(step, total - off);
    Phase k = next_phase();
    if (rank_ == root) {
      mem_copy(open_own(k, w), i + off, n);
      publish(k, w);
    }
    std::size_t lo = std::max(off, mine), hi = std::min(off + n, mine + block);
    if (lo < hi)
      mem_copy(o + (lo - mine), rank_ == root ? i + lo : contribution(root, k, w) + (lo - off), hi - lo);
    finish(k);
    off += n;
  } while (off < total);
}

// out[0, count) = x_0 op x_1 op ... op x_{p-1} (left to right, the same on every rank)
// over elements [off, off + count) of the contributions of phase k.
void NodeGroup::reduce_ranks(std::byte* out, std::size_t off, std::size_t count, Phase k, Place w,
                             Reduction op) {
  std::size_t at = off * op.elem_size, n = count * op.elem_size;
  const std::byte* first = contribution(0, k, w) + at;
  if (out != first) mem_copy(out, first, n);
  for (int q = 1; q < size_; ++q) op.apply(out, contribution(q, k, w) + at, count);
}

void NodeGroup::allreduce(void* data, std::size_t count, Reduction op) {
  op_ = "allreduce with";
  auto* d = static_cast<std::byte*>(data);
  const std::size_t es = op.elem_size, bytes = count * es;
  Line& mine = line(rank_);
  // Small: every rank reduces all contributions itself (one round).
  if (bytes <= std::min<std::size_t>(slot_bytes_, 16 * 1024)) {
    const Place w = place_for(bytes);
    Phase k = next_phase();
    mem_copy(open_own(k, w), d, bytes);
    publish(k, w);
    reduce_ranks(d, 0, count, k, w, op);
    saw_all(k);
    finish(k);
    return;
  }
  // Large: per slot's worth, a reduce-scatter into the result buffer (each rank
  // reduces its share of the elements), then every rank copies the whole result.
  const std::size_t chunk = std::max<std::size_t>(1, slot_bytes_ / es);
  const auto p = static_cast<std::size_t>(size_);
  for (std::size_t off = 0; off < count; off += chunk) {
    std::size_t n = std::min(chunk, count - off);
    Phase k = next_phase();
    mem_copy(open_own(k, Place::slot), d + off * es, n * es);
    publish(k, Place::slot);
    for (int q = 0; q < size_; ++q) contribution(q, k, Place::slot);
    saw_all(k);
    auto r = static_cast<std::size_t>(rank_);
    std::size_t first = n / p * r + std::min(r, n % p), len = n / p + (r < n % p ? 1 : 0);
    if (len) reduce_ranks(result(k) + first * es, first, len, k, Place::slot, op);
    post(mine.mid, k);
    for (int q = 0; q < size_; ++q)
      if (q != rank_) wait_for(line(q).mid, k, q);
    mem_copy(d + off * es, result(k), n * es);
    finish(k);
  }
}

void NodeGroup::reduce(void* data, std::size_t count, Reduction op, int root) {
  op_ = "reduce with";
  auto* d = static_cast<std::byte*>(data);
  const std::size_t es = op.elem_size, bytes = count * es;
  const Place w = place_for(bytes);
  const std::size_t chunk = w != Place::slot ? count : std::max<std::size_t>(1, slot_bytes_ / es);
  std::vector<std::byte> tmp;
  std::size_t off = 0;
  do {
    std::size_t n = std::min(chunk, count - off), at = off * es;
    Phase k = next_phase();
    if (rank_ != root) {
      mem_copy(open_own(k, w), d + at, n * es);
      publish(k, w);
    } else {
      // The root's own contribution is read in place, never published.
      auto src = [&](int q) { return q == rank_ ? d + at : contribution(q, k, w); };
      tmp.resize(n * es);
      mem_copy(tmp.data(), src(0), n * es);
      for (int q = 1; q < size_; ++q) op.apply(tmp.data(), src(q), n);
      mem_copy(d + at, tmp.data(), n * es);
      saw_all(k);
    }
    finish(k);
    off += n;
  } while (off < count);
}

void NodeGroup::allgather(const void* in, std::size_t bytes, void* out) {
  op_ = "allgather with";
  collect(static_cast<const std::byte*>(in), bytes, static_cast<std::byte*>(out), -1);
}

void NodeGroup::gather(const void* in, std::size_t bytes, void* out, int root) {
  op_ = "gather with";
  collect(static_cast<const std::byte*>(in), bytes, static_cast<std::byte*>(out), root);
}

// Every rank's block into `dst` on `root` (-1: on every rank). A rank that reads
// copies its own block straight from `src`, first: `src` may lie inside `dst`.
void NodeGroup::collect(const std::byte* src, std::size_t bytes, std::byte* dst, int root) {
  const Place w = place_for(bytes);
  const std::size_t step = capacity(w);
  const bool reads = root < 0 || rank_ == root, writes = root < 0 || rank_ != root;
  std::size_t off = 0;
  do {  // one phase per slot's worth (at least one: every rank counts the same phases)
    std::size_t n = std::min(step, bytes - off);
    Phase k = next_phase();
    if (writes) {
      mem_copy(open_own(k, w), src + off, n);
      publish(k, w);
    }
    if (reads) {
      mem_move(dst + static_cast<std::size_t>(rank_) * bytes + off, src + off, n);
      for (int q = 0; q < size_; ++q)
        if (q != rank_) mem_copy(dst + static_cast<std::size_t>(q) * bytes + off, contribution(q, k, w), n);
      saw_all(k);
    }
    finish(k);
    off += n;
  } while (off < bytes);
}

void NodeGroup::alltoall(const void* in, std::size_t bytes, void* out) {
  op_ = "alltoall with";
  auto* src = static_cast<const std::byte*>(in);
  auto* dst = static_cast<std::byte*>(out);
  const auto p = static_cast<std::size_t>(size_);
  // Each phase moves a piece of every block: rank r's cell or slot holds its pieces
  // for rank 0, 1, ... in turn.
  const Place w = place_for(bytes * p);
  const std::size_t piece = capacity(w) / p;
  const auto me = static_cast<std::size_t>(rank_);
  std::size_t off = 0;
  do {
    std::size_t n = std::min(piece, bytes - off);
    Phase k = next_phase();
    std::byte* buf = open_own(k, w);
    for (std::size_t q = 0; q < p; ++q)
      if (q != me) mem_copy(buf + q * piece, src + q * bytes + off, n);
    publish(k, w);
    mem_copy(dst + me * bytes + off, src + me * bytes + off, n);  // its own piece, directly
    for (int q = 0; q < size_; ++q)
      if (static_cast<std::size_t>(q) != me)
        mem_copy(dst + static_cast<std::size_t>(q) * bytes + off, contribution(q, k, w) + me * piece, n);
    saw_all(k);
    finish(k);
    off += n;
  } while (off < bytes);
}

}  // namespace ipc::detail
