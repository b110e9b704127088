// A lock-free single-producer/single-consumer ring of variable-size records, laid out
// in memory that two processes share.
//
// Positions are byte counters that only grow (index = position % capacity). Every
// record starts with its own position, stored last with release semantics: the
// consumer knows a record is complete when the position at its head index equals its
// head counter, so a message costs the consumer one cache line (the record's), not
// also a shared tail counter. Stale bytes from an earlier lap carry an older position
// and are never mistaken for a record. The consumer frees space with a release store
// of `head`, which the producer reads only when its cached copy says "full".
// A record takes whole lines, from a line's start: a line the consumer has read is
// never written again in the same lap, so the producer never waits to take back a line
// to add a record to it (two small records to a line, as this ring once laid them out,
// cost a stream of 4-byte messages 1.7 times the time on an AMD EPYC of family 26:
// every second record waited for the line the consumer had just read). None wraps: one
// that would is preceded by a pad record that fills the ring's end.
//
// A producer whose consumer has taken everything goes back to the ring's start early
// (past `wrap_at` bytes into a lap): its record then says so (kWrapAfter) and counts
// the rest of the lap as its own, so that positions and indices still agree. A
// ping-pong, a call and its reply, any exchange that waits for its answer, thus
// cycles through the first few KiB of the ring, whose lines stay in both cores'
// caches, instead of through all of it (lines that come from the shared cache, or
// from memory, on every lap). A stream whose consumer lags keeps the whole ring: the
// producer looks at the consumer's position (a read of its line) once per `wrap_at`
// bytes past the threshold, never on every record; and also at the first record after
// an answer from the consumer's side (answered()), which in a stream of windows (a
// window of messages, then an acknowledgement) is when the consumer has taken them
// all: a look scheduled only by bytes fell at the same point of every window, mid-way,
// and the producer swept the whole ring (4-byte messages in windows of 64: 18 MB/s
// against 34). An answer whose look finds the consumer still at work (traffic both
// ways) is no cue again until a scheduled look has found it so too.
//
// In a stream (no answer from the consumer's side since its last record), the
// producer asks for the lines ahead of it for writing as it publishes each record, up
// to `prefetch_lines` past the record (base/prefetch.hpp): every line it writes was
// read by the consumer on an earlier lap, and a store into it waits until the
// consumer's core has given it up. Without the prefetch each record of a stream waited
// for that transfer in turn (4-byte messages in windows of 64: 100-110 ns per isend,
// 29 when both ranks share a core); with it the transfers overlap. Never the next
// line, where a consumer that keeps up polls for the record to come (taking it away
// costs that record one transfer more), and not in an exchange: there the consumer
// polls each line before the producer writes it, and a ping-pong that prefetched took
// 1.07-1.18 times as long.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/fences.hpp"
#include "base/prefetch.hpp"

namespace ipc::transport::shm {

inline constexpr std::size_t kLine = 64;

struct RingControl {
  alignas(kLine) std::atomic<std::uint64_t> head{0};  // written by the consumer
  // The producer sleeps waiting for room: the consumer rings its doorbell on release.
  alignas(kLine) std::atomic<std::uint32_t> producer_waiting{0};
  // 1: that producer pays a heavy fence before it sleeps (want_room), so the consumer
  // may look at producer_waiting after a light one. Set before its first record.
  std::atomic<std::uint32_t> producer_heavy{0};
  // 1: the producer has made the ring's pages present and may write records. Until
  // then the consumer looks here, not at the ring, whose pages a look would take.
  std::atomic<std::uint32_t> started{0};
  // Offers of the consumer to the producer, to copy parts of large payloads
  // (transport.hpp, kSharedCopy): 0 free, else a rendezvous number and its state
  // (kCopyOffered, kCopyClaimed).
  alignas(kLine) std::atomic<std::uint64_t> copies[8];
};
static_assert(sizeof(RingControl) == 3 * kLine);
inline constexpr std::uint64_t kCopyOffered = 1, kCopyClaimed = 2;
inline constexpr int kCopySlots = 8;
/// A slot's word: rendezvous `cookie` in state `state` (the two low bits).
constexpr std::uint64_t copy_slot(std::uint64_t cookie, std::uint64_t state) { return (cookie << 2) | state; }

/// Prepares a ring over zeroed memory: positions start at one capacity, so that a
/// zero position (fresh memory) never looks like a record.
inline void init_ring(RingControl* c, std::size_t capacity) {
  c->head.store(capacity, std::memory_order_relaxed);
  c->producer_waiting.store(0, std::memory_order_relaxed);
  c->producer_heavy.store(0, std::memory_order_relaxed);
  c->started.store(0, std::memory_order_relaxed);
  for (auto& s : c->copies) s.store(0, std::memory_order_relaxed);
}

// whole: a frame's head and all its payload; first: the payload's total length (8
// bytes), the head and the payload's first part; cont: more payload; pad: fills the
// ring's end.
enum class RecordKind : std::uint8_t { whole = 1, first = 2, cont = 3, pad = 4 };

// RecordHead::flags: the next record starts at the ring's start (the rest of this lap
// is skipped).
inline constexpr std::uint8_t kWrapAfter = 1;
// Records up to this size (with their head) may go back early whenever the ring is
// drained: the small ones, whose cost is their latency. Larger ones (up to the
// producer's `wrap_records`) only in an exchange (answered()): a stream of them is
// better served by lines that no other core holds (8 KiB messages in windows of 64
// went at a third of the rate when they cycled through the first 16 KiB).
inline constexpr std::size_t kWrapRecords = 256;
// Records up to this size (with their head) in an exchange go back once the producer is
// `wrap_answered_at` bytes into a lap instead of `wrap_at`: a ping-pong of 64 or 256
// bytes then cycles through 512 bytes of lines rather than 8 KiB (0.88 / 0.81 of the
// time in alternating rounds; of 1 KiB, one record of 17 lines in the same place every
// time, 1.02-1.06: those keep `wrap_at`).
inline constexpr std::size_t kWrapAnsweredRecords = 512;

struct RecordHead {
  std::atomic<std::uint64_t> pos;  // the record's position: stored last (publishes it)
  RecordKind kind;
  std::uint8_t head;       // whole, first: bytes of the frame's head in the body
  std::uint8_t flags;      // kWrapAfter
  std::uint8_t reserved;
  std::uint32_t bytes;     // body bytes after this head
};
inline constexpr std::size_t kRecordHead = sizeof(RecordHead);
static_assert(kRecordHead == 16);

inline constexpr std::size_t record_size(std::size_t body) {
  return (kRecordHead + body + kLine - 1) & ~(kLine - 1);
}

class RingProducer {
 public:
  RingProducer() = default;
  /// `wrap_at`: bytes into a lap past which the producer goes back to the start when
  /// its consumer has taken everything (0: never; see the top of this file), with
  /// records up to kWrapRecords, or up to `wrap_records` in an exchange (answered()).
  /// `prefetch_lines`: in a stream, the lines up to that many past each record are
  /// asked for, for writing, as the record is published (0: none; see the top of this
  /// file).
  RingProducer(RingControl* c, std::byte* data, std::size_t capacity, std::size_t wrap_at = 0,
               std::size_t wrap_records = kWrapRecords, std::size_t wrap_answered_at = 0,
               std::size_t prefetch_lines = 0)
      : c_(c), data_(data), cap_(capacity), wrap_at_(wrap_at ? wrap_at : ~std::size_t{0}),
        wrap_answered_at_(wrap_at && wrap_answered_at ? std::min(wrap_at, wrap_answered_at) : wrap_at_),
        wrap_records_(wrap_records), ahead_(std::min(prefetch_lines, capacity / kLine) * kLine),
        head_(c->head.load(std::memory_order_acquire)), tail_(head_), at_(static_cast<std::size_t>(tail_ % cap_)),
        next_try_(tail_) {}

  /// The largest body one record can carry.
  std::size_t max_body() const { return cap_ / 4 - kRecordHead; }

  /// Space for a record with `body` bytes (<= max_body()), or null when the ring is
  /// too full now. Write the body, then commit().
  [[gnu::always_inline]] std::byte* reserve(RecordKind kind, std::size_t body, std::uint8_t head = 0) {
    std::size_t need = record_size(body);
    std::size_t pos = at_;
    const bool answered = answered_ && answered_before_;  // (taken by place())
    if (pos + need >= (answered && need <= kWrapAnsweredRecords ? wrap_answered_at_ : wrap_at_) &&
        (need <= kWrapRecords || (answered && need <= wrap_records_)) && need <= cap_ - pos &&
        (tail_ >= next_try_ || (answered_ && !answer_missed_)))
        [[unlikely]]
      return reserve_back(kind, body, head);
    std::size_t to_end = cap_ - pos;
    if (!room(need <= to_end ? need : to_end + need)) return nullptr;
    if (need > to_end) {
      pad(pos, to_end);
      pos = 0;
    }
    std::byte* at = place(pos, kind, head, 0, body);
    tail_ += need;
    at_ = pos + need == cap_ ? 0 : pos + need;
    return at;
  }
  /// Whether records of `total` bytes (their record_size()s summed, the largest
  /// `largest`) all fit now, however the ring's end falls among them: room for them and
  /// a pad at the end. (Not after a record that goes back early.)
  bool fits(std::size_t total, std::size_t largest) { return room(total + largest); }
  /// Whether the consumer has taken every record so far (a read of its position).
  bool drained() {
    head_ = c_->head.load(std::memory_order_acquire);
    return head_ == tail_;
  }
  /// The consumer's side of this pair has sent something back since this producer's
  /// last record: the exchange waits for answers, and a record larger than
  /// kWrapRecords may go back early too.
  void answered() { answered_ = true; }
  /// Publishes the record reserved last; in a stream (no answer since the record
  /// before it), asks for the lines of the lead (see the top of this file).
  void commit() {
    pending_->pos.store(pending_pos_, std::memory_order_release);
    if (ahead_ != 0 && !answered_before_) prefetch_ahead();
  }
  /// The lines a producer asks for after a record that ends at index `next` (position
  /// `tail`), `ahead` bytes of lead, those up to position `fetched` asked for already:
  /// [first, last) as positions, all within the ring (none past its end) and never the
  /// next line (the consumer may be polling it).
  struct Lines {
    std::uint64_t first, last;
  };
  static constexpr Lines lines_ahead(std::size_t next, std::uint64_t tail, std::uint64_t fetched, std::size_t ahead,
                                     std::size_t capacity) {
    const std::uint64_t last = tail + std::min(ahead, capacity - next);
    return {std::min(std::max(fetched, tail + kLine), last), last};
  }

  /// Before the producer sleeps with a record of `body` bytes still to write: asks
  /// the consumer for a wake-up on its next release. False when room has appeared
  /// meanwhile (do not sleep). `tail` is the producer's published position.
  static bool want_room(RingControl* c, std::size_t capacity, std::uint64_t tail, std::size_t body) {
    c->producer_waiting.store(1, std::memory_order_seq_cst);
    if (c->producer_heavy.load(std::memory_order_relaxed))
      base::heavy_fence();  // the consumer may release with a light fence only (release())
    std::uint64_t head = c->head.load(std::memory_order_seq_cst);
    return tail + 2 * record_size(body) - head > capacity;
  }
  RingControl* control() const { return c_; }
  std::size_t capacity() const { return cap_; }
  std::uint64_t tail() const { return tail_; }

 private:
  [[gnu::noinline]] void prefetch_ahead() {
    const Lines l = lines_ahead(at_, tail_, fetched_, ahead_, cap_);
    for (std::uint64_t p = l.first; p < l.last; p += kLine) base::prefetch_for_write(data_ + at_ + (p - tail_));
    fetched_ = std::max(fetched_, l.last);
  }
  // A pad record of `extent` bytes at `pos`, published at once (the consumer skips it).
  void pad(std::size_t pos, std::size_t extent) {
    auto* p = reinterpret_cast<RecordHead*>(data_ + pos);
    p->kind = RecordKind::pad;
    p->head = 0;
    p->flags = 0;
    p->bytes = static_cast<std::uint32_t>(extent - kRecordHead);
    p->pos.store(tail_, std::memory_order_release);
    tail_ += extent;
  }
  bool room(std::size_t total) {
    if (tail_ + total - head_ <= cap_) return true;
    head_ = c_->head.load(std::memory_order_acquire);
    return tail_ + total - head_ <= cap_;
  }
  std::byte* place(std::size_t pos, RecordKind kind, std::uint8_t head, std::uint8_t flags, std::size_t body) {
    pending_ = reinterpret_cast<RecordHead*>(data_ + pos);
    pending_->kind = kind;
    pending_->head = head;
    pending_->flags = flags;
    pending_->bytes = static_cast<std::uint32_t>(body);
    pending_pos_ = tail_;
    answered_before_ = answered_;
    answered_ = false;
    return data_ + pos + kRecordHead;
  }
  // Past wrap_at: back to the start after this record when the consumer has taken
  // (and released) every record so far, else on as usual (and not asked again for
  // wrap_at bytes). Out of line: the fast path stays small enough to inline.
  [[gnu::noinline]] std::byte* reserve_back(RecordKind kind, std::size_t body, std::uint8_t head) {
    head_ = c_->head.load(std::memory_order_acquire);
    if (head_ != tail_) {
      // Not before wrap_at bytes more; nor at the next answer, when this one (if it was
      // one) found the consumer still at work: traffic both ways, not turns.
      if (tail_ >= next_try_) next_try_ = tail_ + wrap_at_;
      answer_missed_ = answered_;
      return reserve(kind, body, head);
    }
    answer_missed_ = false;
    std::size_t pos = at_;
    std::byte* at = place(pos, kind, head, kWrapAfter, body);
    tail_ += cap_ - pos;  // the record and the rest of the lap (all free: drained)
    at_ = 0;
    return at;
  }

  RingControl* c_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t wrap_at_ = ~std::size_t{0};
  std::size_t wrap_answered_at_ = ~std::size_t{0};  // the same in an exchange (answered())
  std::size_t wrap_records_ = kWrapRecords;
  std::size_t ahead_ = 0;  // the prefetch's lead in bytes (whole lines); 0: none
  std::uint64_t fetched_ = 0;  // lines asked for up to this position
  std::uint64_t head_ = 0;  // cached
  std::uint64_t tail_ = 0;  // reserved so far
  std::size_t at_ = 0;      // tail_ % cap_, kept as it moves (a division costs about 15 cycles)
  RecordHead* pending_ = nullptr;
  std::uint64_t pending_pos_ = 0;
  std::uint64_t next_try_ = 0;  // no early wrap tried before this position (the consumer lagged)...
  bool answer_missed_ = false;  // ...except at an answer, unless the last one tried found it lagging
  bool answered_ = false;          // answered() since the last record placed
  bool answered_before_ = false;   // ... and between the two before it
};

class RingConsumer {
 public:
  RingConsumer() = default;
  RingConsumer(RingControl* c, std::byte* data, std::size_t capacity)
      : c_(c), data_(data), cap_(capacity), head_(c->head.load(std::memory_order_relaxed)),
        at_(static_cast<std::size_t>(head_ % cap_)) {}

  /// The next record (pads skipped), or null when the ring is empty. The body stays
  /// valid until pop(). A pad whose size does not fit the ring is returned as it is
  /// (the caller reports it malformed).
  const RecordHead* front() {
    for (;;) {
      auto* h = reinterpret_cast<const RecordHead*>(data_ + at_);
      if (h->pos.load(std::memory_order_acquire) != head_) return nullptr;
      if (h->kind != RecordKind::pad) [[likely]]
        return h;
      std::size_t skip = kRecordHead + std::size_t{h->bytes};
      if (skip % kLine != 0 || skip > cap_ - at_) return h;
      head_ += skip;
      at_ = at_ + skip == cap_ ? 0 : at_ + skip;
    }
  }
  static const std::byte* body(const RecordHead* h) { return reinterpret_cast<const std::byte*>(h) + kRecordHead; }
  /// Consumes the record front() returned (and follows its producer back to the
  /// ring's start when the record says kWrapAfter). Clears the first word of each of its
  /// lines but the first, so that no later lap can read leftover payload bytes there
  /// as the position of a record (any line may later hold a record head at its
  /// start). The first holds this record's position, which no later lap expects
  /// (positions only grow): left alone, a one-line record costs the consumer no store into a line
  /// the producer writes next lap. (The store's ownership request held up the
  /// consumer's next stores, such as its reply's record, until the producer's copy
  /// was invalidated.)
  void pop(const RecordHead* h) {
    std::size_t n = record_size(h->bytes);
    std::byte* p = data_ + at_;
    for (std::size_t off = kLine; off < n; off += kLine)
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p + off)).store(0, std::memory_order_relaxed);
    if (h->flags & kWrapAfter) [[unlikely]] {  // the producer went back to the start
      head_ += cap_ - at_;
      at_ = 0;
      return;
    }
    head_ += n;
    at_ = at_ + n == cap_ ? 0 : at_ + n;  // records never wrap
  }
  /// Hands consumed space back to the producer. True when the producer asked to be
  /// woken for it (the caller rings its doorbell).
  bool release() {
    if (!light_) [[unlikely]]
      light_ = c_->producer_heavy.load(std::memory_order_acquire) && base::light_fences();
    if (light_) {
      c_->head.store(head_, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the heavy side: want_room()
    } else {
      c_->head.store(head_, std::memory_order_seq_cst);
    }
    if (c_->producer_waiting.load(std::memory_order_seq_cst) == 0) return false;
    return c_->producer_waiting.exchange(0, std::memory_order_seq_cst) != 0;
  }
  /// Whether a record waits, from shared memory alone (any thread; the consumer
  /// releases before it lets go of the progress lock).
  static bool pending(const RingControl* c, const std::byte* data, std::size_t capacity) {
    std::uint64_t head = c->head.load(std::memory_order_seq_cst);
    auto* h = reinterpret_cast<const RecordHead*>(data + head % capacity);
    return h->pos.load(std::memory_order_seq_cst) == head;
  }

 private:
  RingControl* c_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  std::uint64_t head_ = 0;
  std::size_t at_ = 0;  // head_ % cap_, kept as it moves
  bool light_ = false;  // the producer pays the heavy fence: releases use a light one
};

}  // namespace ipc::transport::shm
