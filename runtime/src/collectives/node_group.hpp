// Collectives of the ranks of one node through one shared segment, instead of
// messages.
//
// On a node a collective's cost is not bytes but hand-offs: a tree or a ring over
// the message rings needs log2 p or 2(p-1) steps in which one rank must wait for one
// other, and on a node whose ranks outnumber its CPUs each such step waits for a
// rank to be scheduled. Here every rank writes its contribution into its own slot,
// raises its flag, and reads what it needs straight from the others' slots: a
// barrier or a small allreduce is one round in which every rank runs once, a large
// allreduce is a reduce-scatter and an allgather in place (two rounds per slot's
// worth), and nothing is copied through a ring.
//
// Layout of the segment ("/ipc-<job>-c", created by rank 0, mapped by every rank of
// the job, unlinked once all have mapped it):
//
//   GroupHeader (128 B) | Line[ranks] | Cell[ranks][32] | slot[ranks][2][S] | result[2][S]
//
// Rank r writes only its own Line, Cells and slots (and its share of a result). A
// Line holds three phase counters; a Cell (one cache line) holds up to 56 bytes of a
// small contribution next to the phase that publishes it, so a small collective moves
// one line per rank.
//
// Phases. Every collective call takes one or more phase numbers k, the same on every
// rank (ranks call collectives in the same order). Phase k uses cell k mod 32 and
// slots of parity k & 1. A rank publishes its contribution (the cell's phase, or
// `arrive` for a slot), raises `mid` when its part of a reduction is in the result
// (allreduce), and `done` when it has read everything it needs of phase k. Before
// writing in phase k a rank makes sure every rank's `done` has passed the last phase
// that used the same buffer (k - 32 for a cell, k - 2 for a slot); it publishes in
// phase k only after `done` reached k - 1, so a round in which a rank saw every
// contribution of phase k also tells it that all are done with k - 1, and the check
// is usually free. A bcast root thus runs up to 32 small broadcasts ahead.
//
// Waiting: the engine's one waiter (busy, then yielding, then asleep on the rank's
// doorbell, by the job's wait policy); a sleeping rank marks its line, and a writer
// that sees sleepers in the header rings their doorbells. While it waits a rank also
// makes progress on its point-to-point traffic, and every 100 ms asleep it checks
// whether the rank it waits for is gone.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include <vector>

#include "base/doorbell.hpp"
#include "base/mapping.hpp"
#include "collectives/api.hpp"

namespace ipc::detail {

class Engine;

/// The mapping of a node group's segment.
class NodeSegment {
 public:
  NodeSegment() = default;
  /// Creates the segment of `ranks` ranks with slots of `slot_bytes`.
  /// @throws ipc::Error naming the segment.
  static NodeSegment create(const std::string& name, int ranks, std::size_t slot_bytes);
  /// Maps an existing one and checks it is for `ranks` ranks.
  static NodeSegment open(const std::string& name, int ranks);

  /// Removes the name (the mappings stay). Idempotent.
  void unlink() { map_.unlink(); }
  std::byte* base() const { return map_.base(); }
  explicit operator bool() const { return static_cast<bool>(map_); }
  const std::string& name() const { return map_.name(); }

 private:
  base::Mapping map_;
};

/// Slot bytes from IPC_SHM_COLL for a group of `ranks` (0: no node group).
std::size_t node_slot_bytes(int ranks);

class NodeGroup {
 public:
  using Phase = std::uint64_t;
  /// `rank` and `size`: this rank and the number of ranks (the job's, on this node, or
  /// a communicator's whose ranks are all on it: `members` then gives their ranks in
  /// the job, empty for the job's own). `job` and `bell`: the job's id (the ranks'
  /// doorbells are named after it) and this rank's doorbell, to ring the others with.
  NodeGroup(Engine& engine, NodeSegment segment, int rank, int size, const std::string& job,
            const base::Doorbell& bell, std::vector<int> members = {});
  NodeGroup(const NodeGroup&) = delete;
  NodeGroup& operator=(const NodeGroup&) = delete;

  int size() const { return size_; }
  /// Whether reductions of elements of `elem_bytes` fit a slot (the same answer on
  /// every rank: larger elements go over messages).
  bool fits(std::size_t elem_bytes) const { return elem_bytes <= slot_bytes_; }
  /// A scatter of `total` bytes is published in at most the two slots in flight: the
  /// root writes it all without waiting for a reader. Beyond, every slot's worth is a
  /// phase that each rank takes part in, with or without a block in it (on a node with
  /// more ranks than CPUs, each a round of all of them through the CPUs: 8 ranks on 2
  /// CPUs scattering 1 MiB blocks took 11 ms this way, 0.85 ms over messages).
  bool scatters(std::size_t total) const { return total <= 2 * slot_bytes_; }
  void unlink() { seg_.unlink(); }

  /// Every rank posts its arrival. Not `released`: each waits for all the others'
  /// (one scheduling round). `released` (a node with more ranks than CPUs): rank 0
  /// waits for all, then posts its own, the release, which the others wait for; rank 0
  /// leaves first, so that what follows from it (a bcast, OSU's way of timing one) is
  /// under way before the others get their CPU back. 4 ranks on 2 CPUs, alternating
  /// runs: OSU-style bcast of 8 B / 1 KiB 0.04 / 0.08 of the time, OSU-style allreduce
  /// 0.82, a barrier-and-bcast loop 0.87-1.15; a loop of barriers alone 1.4-1.6 (8
  /// ranks 1.25, 16 ranks 1.11), still 0.87-0.95 / 0.62 / 0.52 of Open MPI's
  /// (docs/design.md).
  void barrier(bool released);
  void bcast(void* data, std::size_t bytes, int root);
  /// Block r of the root's `in` (size() blocks of `block` bytes) into rank r's `out`.
  void scatter(const void* in, std::size_t block, void* out, int root);
  void allreduce(void* data, std::size_t count, Reduction op);
  void reduce(void* data, std::size_t count, Reduction op, int root);
  void allgather(const void* in, std::size_t bytes, void* out);
  void gather(const void* in, std::size_t bytes, void* out, int root);
  void alltoall(const void* in, std::size_t bytes, void* out);

  struct Line;  // a rank's phase counters
  struct Cell;  // a small contribution and its phase

  /// Contributions up to this many bytes travel in cells.
  static constexpr std::size_t kInline = 56;

 private:
  Line& line(int r) const;
  Cell& cell(int r, Phase k) const;
  std::byte* slot(int r, Phase k) const;
  std::byte* result(Phase k) const;
  /// Where a phase's contribution of so many bytes goes: a cell (up to kInline bytes,
  /// its flag beside it); a piece of the rank's slot pair (up to piece_bytes_, the
  /// cell's flag): both kCells phases in flight, so that a rank on a node with more
  /// ranks than CPUs runs that far ahead of the others; or a slot (the rank's `arrive`
  /// flag), two in flight.
  enum class Place : std::uint8_t { cell, piece, slot };
  Place place_for(std::size_t bytes) const;
  std::size_t capacity(Place w) const;
  std::byte* data(int r, Phase k, Place w) const;

  Phase next_phase() { return ++phase_; }
  /// Waits until every rank is done with the phase whose cell (small) or slot this
  /// phase reuses; remembers the least `done` seen.
  void before_write(Phase k, Place w);
  /// Where this rank's contribution of phase k goes (after before_write).
  std::byte* open_own(Phase k, Place w);
  /// Announces this rank's contribution of phase k.
  void publish(Phase k, Place w);
  /// Rank q's contribution of phase k, once it is there.
  const std::byte* contribution(int q, Phase k, Place w);
  /// Every other rank's contribution of phase k has been seen: all are done with k - 1.
  void saw_all(Phase k);
  /// This rank has read all it needs of phase k.
  void finish(Phase k);
  void post(std::atomic<std::uint64_t>& flag, Phase k);
  /// Waits until `flag` reaches k, failing when rank `rank` of the group is lost (any
  /// other rank, when `rank` is -1).
  void wait_for(const std::atomic<std::uint64_t>& flag, Phase k, int rank);
  void collect(const std::byte* src, std::size_t bytes, std::byte* dst, int root);
  void reduce_ranks(std::byte* out, std::size_t off, std::size_t count, Phase k, Place w, Reduction op);

  Engine& engine_;
  NodeSegment seg_;
  int rank_;
  int size_;
  const base::Doorbell& bell_;
  std::vector<base::Doorbell::Address> bells_;  // by rank
  std::vector<int> members_;                    // by rank: its rank in the job (empty: the same)
  std::size_t slot_bytes_;
  std::size_t piece_bytes_;
  std::byte* lines_;
  std::byte* cells_;
  std::byte* slots_;
  Phase phase_ = 0;
  Phase known_done_ = 0;  // every rank's `done` is known to be at least this
  Place pair_use_ = Place::cell;  // what this rank's slot pair last held (cell: nothing yet)
  const char* op_ = "";           // "allreduce with" etc., for error messages
};

}  // namespace ipc::detail
