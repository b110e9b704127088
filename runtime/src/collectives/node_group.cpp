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
#include "base/errors.hpp"
#include "base/params.hpp"

namespace ipc::detail {
namespace {

// memcpy and memmove that take empty ranges at null pointers (a collective of 0 bytes).
void mem_copy(void* to, const void* from, std::size_t n) {
  if (n) std::memcpy(to, from, n);
}
void mem_move(void* to, const void* from, std::size_t n) {
  if (n) std::memmove(to, from, n);
}

constexpr std::uint64_t kMagic = 0x31707267637069ull;  // "ipcgrp1"
constexpr std::size_t kLine = 64;
constexpr std::uint32_t kCells = 32;  // small contributions in flight per rank

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

void NodeGroup::post(std::atomic<std::uint64_t>& flag, Phase k) {
  flag.store(k, std::memory_order_seq_cst);
  if (header_of(seg_.base())->sleepers.load(std::memory_order_seq_cst) == 0) return;
  for (int q = 0; q < size_; ++q)
    if (q != rank_ && line(q).sleeping.load(std::memory_order_seq_cst) > 0) bell_.ring(bells_[static_cast<std::size_t>(q)]);
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
    Announce(GroupHeader* hh, Line& l, const std::atomic<std::uint64_t>& f, Phase kk) : h(hh), me(l), flag(f), k(kk) {}
    bool arm() override {
      h->sleepers.fetch_add(1, std::memory_order_seq_cst);
      me.sleeping.fetch_add(1, std::memory_order_seq_cst);
      return !reached(flag.load(std::memory_order_seq_cst), k);
    }
    void disarm() override {
      me.sleeping.fetch_sub(1, std::memory_order_seq_cst);
      h->sleepers.fetch_sub(1, std::memory_order_seq_cst);
    }
  } announce(header_of(seg_.base()), line(rank_), flag, k);
  engine_.wait_until(
      [&] {
        if (reached(flag.load(std::memory_order_acquire), k)) return true;
        int j = members_.empty() ? rank : members_[static_cast<std::size_t>(rank)];
        if (engine_.gone(j)) std::rethrow_exception(engine_.lost_error(op_, j));
        return false;
      },
      // No completion makes it true (writers ring: post()): keyed on the flag, which
      // nothing completes, so that the rank's completions do not wake it.
      std::chrono::steady_clock::time_point::max(), &announce, 64, &flag);
}

void NodeGroup::before_write(Phase k, bool small) {
  Phase back = small ? kCells : 2;
  if (k <= back) return;  // the buffer's first use
  Phase need = k - back;
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

std::byte* NodeGroup::open_own(Phase k, bool small) {
  before_write(k, small);
  return small ? cell(rank_, k).data : slot(rank_, k);
}

void NodeGroup::publish(Phase k, bool small) { post(small ? cell(rank_, k).phase : line(rank_).arrive, k); }

const std::byte* NodeGroup::contribution(int q, Phase k, bool small) {
  if (q == rank_) return small ? cell(q, k).data : slot(q, k);
  if (small) {
    Cell& c = cell(q, k);
    wait_for(c.phase, k, q);
    return c.data;
  }
  wait_for(line(q).arrive, k, q);
  return slot(q, k);
}

void NodeGroup::finish(Phase k) { post(line(rank_).done, k); }

void NodeGroup::barrier() {
  op_ = "barrier with";
  Phase k = next_phase();
  publish(k, false);
  for (int q = 0; q < size_; ++q)
    if (q != rank_) wait_for(line(q).arrive, k, q);
  saw_all(k);
  finish(k);
}

void NodeGroup::bcast(void* data, std::size_t bytes, int root) {
  op_ = "bcast with";
  auto* d = static_cast<std::byte*>(data);
  const bool small = bytes <= kInline;
  const std::size_t step = small ? kInline : slot_bytes_;
  std::size_t off = 0;
  do {  // one phase per slot's worth (at least one: every rank counts the same phases)
    std::size_t n = std::min(step, bytes - off);
    Phase k = next_phase();
    if (rank_ == root) {
      mem_copy(open_own(k, small), d + off, n);
      publish(k, small);
    } else {
      mem_copy(d + off, contribution(root, k, small), n);
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
  const bool small = total <= kInline;
  const std::size_t step = small ? kInline : slot_bytes_;
  const std::size_t mine = block * static_cast<std::size_t>(rank_);
  std::size_t off = 0;
  do {
    std::size_t n = std::min(step, total - off);
    Phase k = next_phase();
    if (rank_ == root) {
      mem_copy(open_own(k, small), i + off, n);
      publish(k, small);
    }
    std::size_t lo = std::max(off, mine), hi = std::min(off + n, mine + block);
    if (lo < hi)
      mem_copy(o + (lo - mine), rank_ == root ? i + lo : contribution(root, k, small) + (lo - off), hi - lo);
    finish(k);
    off += n;
  } while (off < total);
}

// out[0, count) = x_0 op x_1 op ... op x_{p-1} (left to right, the same on every rank)
// over elements [off, off + count) of the contributions of phase k.
void NodeGroup::reduce_ranks(std::byte* out, std::size_t off, std::size_t count, Phase k, bool small,
                             Reduction op) {
  std::size_t at = off * op.elem_size, n = count * op.elem_size;
  const std::byte* first = contribution(0, k, small) + at;
  if (out != first) mem_copy(out, first, n);
  for (int q = 1; q < size_; ++q) op.apply(out, contribution(q, k, small) + at, count);
}

void NodeGroup::allreduce(void* data, std::size_t count, Reduction op) {
  op_ = "allreduce with";
  auto* d = static_cast<std::byte*>(data);
  const std::size_t es = op.elem_size, bytes = count * es;
  Line& mine = line(rank_);
  // Small: every rank reduces all contributions itself (one round).
  if (bytes <= std::min<std::size_t>(slot_bytes_, 16 * 1024)) {
    const bool small = bytes <= kInline;
    Phase k = next_phase();
    mem_copy(open_own(k, small), d, bytes);
    publish(k, small);
    reduce_ranks(d, 0, count, k, small, op);
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
    mem_copy(open_own(k, false), d + off * es, n * es);
    publish(k, false);
    for (int q = 0; q < size_; ++q) contribution(q, k, false);
    saw_all(k);
    auto r = static_cast<std::size_t>(rank_);
    std::size_t first = n / p * r + std::min(r, n % p), len = n / p + (r < n % p ? 1 : 0);
    if (len) reduce_ranks(result(k) + first * es, first, len, k, false, op);
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
  const bool small = bytes <= kInline;
  const std::size_t chunk = small ? count : std::max<std::size_t>(1, slot_bytes_ / es);
  std::vector<std::byte> tmp;
  std::size_t off = 0;
  do {
    std::size_t n = std::min(chunk, count - off), at = off * es;
    Phase k = next_phase();
    if (rank_ != root) {
      mem_copy(open_own(k, small), d + at, n * es);
      publish(k, small);
    } else {
      // The root's own contribution is read in place, never published.
      auto src = [&](int q) { return q == rank_ ? d + at : contribution(q, k, small); };
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
  const bool small = bytes <= kInline;
  const std::size_t step = small ? kInline : slot_bytes_;
  const bool reads = root < 0 || rank_ == root, writes = root < 0 || rank_ != root;
  std::size_t off = 0;
  do {  // one phase per slot's worth (at least one: every rank counts the same phases)
    std::size_t n = std::min(step, bytes - off);
    Phase k = next_phase();
    if (writes) {
      mem_copy(open_own(k, small), src + off, n);
      publish(k, small);
    }
    if (reads) {
      mem_move(dst + static_cast<std::size_t>(rank_) * bytes + off, src + off, n);
      for (int q = 0; q < size_; ++q)
        if (q != rank_) mem_copy(dst + static_cast<std::size_t>(q) * bytes + off, contribution(q, k, small), n);
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
  const bool small = bytes * p <= kInline;
  const std::size_t piece = small ? kInline / p : slot_bytes_ / p;
  const auto me = static_cast<std::size_t>(rank_);
  std::size_t off = 0;
  do {
    std::size_t n = std::min(piece, bytes - off);
    Phase k = next_phase();
    std::byte* buf = open_own(k, small);
    for (std::size_t q = 0; q < p; ++q)
      if (q != me) mem_copy(buf + q * piece, src + q * bytes + off, n);
    publish(k, small);
    mem_copy(dst + me * bytes + off, src + me * bytes + off, n);  // its own piece, directly
    for (int q = 0; q < size_; ++q)
      if (static_cast<std::size_t>(q) != me)
        mem_copy(dst + static_cast<std::size_t>(q) * bytes + off, contribution(q, k, small) + me * piece, n);
    saw_all(k);
    finish(k);
    off += n;
  } while (off < bytes);
}

}  // namespace ipc::detail
