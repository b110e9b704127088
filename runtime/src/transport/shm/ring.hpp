// A lock-free single-producer/single-consumer ring of variable-size records, laid out
// in memory that two processes share.
//
// Positions are byte counters that only grow (index = position % capacity). The
// producer publishes with a release store of `tail`; the consumer frees space with a
// release store of `head`. Each side caches the other's counter and reloads it only
// when the cached value says "full" / "empty", so a steady stream touches the shared
// counters once per batch. Records start on 64-byte boundaries (no record shares a
// cache line with the next) and never wrap: one that would is preceded by a pad
// record that fills the ring's tail end.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ipc::transport::shm {

inline constexpr std::size_t kLine = 64;

struct RingControl {
  alignas(kLine) std::atomic<std::uint64_t> tail{0};  // written by the producer
  alignas(kLine) std::atomic<std::uint64_t> head{0};  // written by the consumer
  // The producer sleeps waiting for room: the consumer rings its doorbell on release.
  alignas(kLine) std::atomic<std::uint32_t> producer_waiting{0};
};
static_assert(sizeof(RingControl) == 3 * kLine);

enum class RecordKind : std::uint32_t { frame = 1, cont = 2, pad = 3 };

struct RecordHead {
  RecordKind kind;
  std::uint32_t bytes;  // body bytes after this head
};
inline constexpr std::size_t kRecordHead = sizeof(RecordHead);

inline constexpr std::size_t record_size(std::size_t body) { return (kRecordHead + body + kLine - 1) & ~(kLine - 1); }

class RingProducer {
 public:
  RingProducer() = default;
  RingProducer(RingControl* c, std::byte* data, std::size_t capacity)
      : c_(c), data_(data), cap_(capacity), tail_(c->tail.load(std::memory_order_relaxed)),
        head_(c->head.load(std::memory_order_acquire)) {}

  /// The largest body one record can carry.
  std::size_t max_body() const { return cap_ / 4 - kRecordHead; }

  /// Space for a record with `body` bytes (<= max_body()), or null when the ring is
  /// too full now. Write the body, then commit().
  std::byte* reserve(RecordKind kind, std::size_t body) {
    std::size_t need = record_size(body);
    std::size_t pos = static_cast<std::size_t>(tail_ % cap_);
    std::size_t to_end = cap_ - pos;
    std::size_t total = need <= to_end ? need : to_end + need;
    if (!room(total)) return nullptr;
    if (need > to_end) {
      auto* pad = reinterpret_cast<RecordHead*>(data_ + pos);
      pad->kind = RecordKind::pad;
      pad->bytes = 0;
      tail_ += to_end;
      pos = 0;
    }
    auto* h = reinterpret_cast<RecordHead*>(data_ + pos);
    h->kind = kind;
    h->bytes = static_cast<std::uint32_t>(body);
    tail_ += need;
    return data_ + pos + kRecordHead;
  }
  /// Publishes every record reserved so far.
  void commit() { c_->tail.store(tail_, std::memory_order_release); }

  /// Before the producer sleeps with a record of `body` bytes still to write: asks
  /// the consumer for a wake-up on its next release. False when room has appeared
  /// meanwhile (do not sleep). Shared counters only: safe from any thread.
  static bool want_room(RingControl* c, std::size_t capacity, std::size_t body) {
    c->producer_waiting.store(1, std::memory_order_seq_cst);
    std::uint64_t head = c->head.load(std::memory_order_seq_cst);
    std::uint64_t tail = c->tail.load(std::memory_order_seq_cst);
    return tail + 2 * record_size(body) - head > capacity;
  }
  RingControl* control() const { return c_; }
  std::size_t capacity() const { return cap_; }

 private:
  bool room(std::size_t total) {
    if (tail_ + total - head_ <= cap_) return true;
    head_ = c_->head.load(std::memory_order_acquire);
    return tail_ + total - head_ <= cap_;
  }

  RingControl* c_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  std::uint64_t tail_ = 0;  // published or reserved
  std::uint64_t head_ = 0;  // cached
};

class RingConsumer {
 public:
  RingConsumer() = default;
  RingConsumer(RingControl* c, std::byte* data, std::size_t capacity)
      : c_(c), data_(data), cap_(capacity), head_(c->head.load(std::memory_order_relaxed)),
        tail_(c->tail.load(std::memory_order_acquire)) {}

  /// The next record (pads skipped), or null when the ring is empty. The body stays
  /// valid until pop().
  const RecordHead* front() {
    for (;;) {
      if (head_ == tail_) {
        tail_ = c_->tail.load(std::memory_order_acquire);
        if (head_ == tail_) return nullptr;
      }
      auto* h = reinterpret_cast<const RecordHead*>(data_ + head_ % cap_);
      if (h->kind != RecordKind::pad) return h;
      head_ += cap_ - head_ % cap_;
    }
  }
  static const std::byte* body(const RecordHead* h) { return reinterpret_cast<const std::byte*>(h) + kRecordHead; }
  /// Consumes the record front() returned.
  void pop(const RecordHead* h) { head_ += record_size(h->bytes); }
  /// Hands consumed space back to the producer. True when the producer asked to be
  /// woken for it (the caller rings its doorbell).
  bool release() {
    c_->head.store(head_, std::memory_order_seq_cst);
    if (c_->producer_waiting.load(std::memory_order_relaxed) == 0) return false;
    return c_->producer_waiting.exchange(0, std::memory_order_seq_cst) != 0;
  }
  /// Whether records are waiting, from the shared counters alone (any thread).
  static bool pending(const RingControl* c) {
    return c->tail.load(std::memory_order_seq_cst) != c->head.load(std::memory_order_seq_cst);
  }

 private:
  RingControl* c_ = nullptr;
  const std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  std::uint64_t head_ = 0;
  std::uint64_t tail_ = 0;  // cached
};

}  // namespace ipc::transport::shm
