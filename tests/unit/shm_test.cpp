// The shared-memory pieces under two threads: the ring (ordering, no loss, wrap-around,
// full and empty edges) and the transport's doorbell (no lost wake-ups).
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "base/errors.hpp"
#include "base/names.hpp"
#include "transport/shm/ring.hpp"
#include "base/doorbell.hpp"
#include "transport/registry.hpp"
#include "transport/shm/shm_transport.hpp"

#include <sys/stat.h>

using namespace ipc;
using namespace ipc::transport;
using namespace ipc::transport::shm;

namespace {

struct alignas(64) RingMemory {
  RingControl control;
  std::byte data[4096] = {};
  RingMemory() { init_ring(&control, sizeof data); }
};

std::uint8_t fill(std::uint64_t seq, std::size_t i) { return static_cast<std::uint8_t>(seq * 7 + i * 13); }

}  // namespace

TEST(ShmRing, EmptyAndFullEdges) {
  RingMemory m;
  RingProducer p(&m.control, m.data, sizeof m.data);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  EXPECT_EQ(c.front(), nullptr);
  EXPECT_FALSE(RingConsumer::pending(&m.control, m.data, sizeof m.data));
  // Fill with 64-byte records (16 B head + 48 B body) until it refuses.
  int n = 0;
  while (p.reserve(RecordKind::whole, 48)) {
    p.commit();
    ++n;
  }
  EXPECT_EQ(n, static_cast<int>(sizeof m.data / 64));
  EXPECT_TRUE(RingConsumer::pending(&m.control, m.data, sizeof m.data));
  // One record consumed and released makes room for exactly one more.
  auto* r = c.front();
  ASSERT_NE(r, nullptr);
  c.pop(r);
  EXPECT_EQ(p.reserve(RecordKind::whole, 48), nullptr);  // not released yet
  c.release();
  EXPECT_NE(p.reserve(RecordKind::whole, 48), nullptr);
  p.commit();
  EXPECT_EQ(p.reserve(RecordKind::whole, 48), nullptr);
  // An unpublished record is invisible: reserve without commit.
  RingMemory m2;
  RingProducer p2(&m2.control, m2.data, sizeof m2.data);
  RingConsumer c2(&m2.control, m2.data, sizeof m2.data);
  ASSERT_NE(p2.reserve(RecordKind::whole, 8), nullptr);
  EXPECT_EQ(c2.front(), nullptr);
  p2.commit();
  EXPECT_NE(c2.front(), nullptr);
}

// A record's later lines hold payload where a record head could be in a later lap: a
// payload word equal to the position expected there must not read as a record (pop
// clears those lines). A consumed record's own head keeps its old position, which no
// later lap expects.
TEST(ShmRing, LeftoverBytesNeverReadAsARecordInALaterLap) {
  RingMemory m;
  constexpr std::uint64_t cap = sizeof m.data;
  RingProducer p(&m.control, m.data, cap);
  RingConsumer c(&m.control, m.data, cap);
  // A two-line record at offset 0 (positions start at one capacity): its second line
  // starts at body byte 48, where the word the next lap expects at offset 64 goes.
  std::byte* at = p.reserve(RecordKind::whole, 100);
  ASSERT_NE(at, nullptr);
  std::memset(at, 0, 100);
  const std::uint64_t next_lap_at_64 = 2 * cap + 64;
  std::memcpy(at + 48, &next_lap_at_64, 8);
  p.commit();
  auto* r = c.front();
  ASSERT_NE(r, nullptr);
  c.pop(r);
  c.release();
  // One-line records to the end of the ring, consumed.
  for (std::uint64_t off = 128; off < cap; off += 64) {
    ASSERT_NE(p.reserve(RecordKind::whole, 48), nullptr);
    p.commit();
    ASSERT_NE(r = c.front(), nullptr);
    c.pop(r);
  }
  c.release();
  // The next lap: one record at offset 0, consumed; nothing has been written at 64.
  ASSERT_NE(p.reserve(RecordKind::whole, 8), nullptr);
  p.commit();
  ASSERT_NE(r = c.front(), nullptr);
  c.pop(r);
  c.release();
  EXPECT_EQ(c.front(), nullptr);
  EXPECT_FALSE(RingConsumer::pending(&m.control, m.data, cap));
  // And the record written there next is read as it should be.
  at = p.reserve(RecordKind::whole, 8);
  ASSERT_NE(at, nullptr);
  const std::uint64_t v = 42;
  std::memcpy(at, &v, 8);
  p.commit();
  ASSERT_NE(r = c.front(), nullptr);
  std::uint64_t got = 0;
  std::memcpy(&got, RingConsumer::body(r), 8);
  EXPECT_EQ(got, 42u);
}

// Every record starts a line of its own and takes whole lines, whatever its size,
// and the consumer reads every one in order.
TEST(ShmRing, EveryRecordTakesWholeLinesOfItsOwn) {
  RingMemory m;
  RingProducer p(&m.control, m.data, sizeof m.data);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  std::vector<std::size_t> bodies = {4, 16, 0, 100, 16, 48, 8, 49};
  std::vector<std::ptrdiff_t> offsets;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    std::byte* at = p.reserve(RecordKind::whole, bodies[i]);
    ASSERT_NE(at, nullptr);
    offsets.push_back(at - kRecordHead - m.data);
    std::memset(at, static_cast<int>(i + 1), bodies[i]);
    p.commit();
  }
  // Up to 48 bytes of body: one line; 100: two lines; 49: two lines.
  EXPECT_EQ(offsets, (std::vector<std::ptrdiff_t>{0, 64, 128, 192, 320, 384, 448, 512}));
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    auto* r = c.front();
    ASSERT_NE(r, nullptr) << "record " << i;
    EXPECT_EQ(r->bytes, bodies[i]);
    for (std::size_t k = 0; k < bodies[i]; ++k) ASSERT_EQ(RingConsumer::body(r)[k], std::byte(i + 1));
    c.pop(r);
  }
  EXPECT_EQ(c.front(), nullptr);
}

// A line whose start held payload of a record of several lines in an earlier lap is
// where the consumer looks for the next record in a later one: a payload word equal
// to the position expected there is never read as a record (the consumer cleared it).
TEST(ShmRing, LeftoverPayloadAtALinesStartNeverReadAsARecord) {
  RingMemory m;
  constexpr std::uint64_t cap = sizeof m.data;
  RingProducer p(&m.control, m.data, cap);
  RingConsumer c(&m.control, m.data, cap);
  // Two-line records over the whole ring, each with the position that the next lap's
  // one-line record at its second line would have, where that line starts.
  for (std::uint64_t off = 0; off < cap; off += 128) {
    std::byte* at = p.reserve(RecordKind::whole, 112);
    ASSERT_NE(at, nullptr);
    const std::uint64_t next_lap_second = 2 * cap + off + 64;
    std::memcpy(at + 48, &next_lap_second, 8);
    p.commit();
    auto* r = c.front();
    ASSERT_NE(r, nullptr);
    c.pop(r);
    c.release();
  }
  // The next lap: a one-line record at each first line, consumed; nothing after it.
  for (std::uint64_t off = 0; off < 512; off += 128) {
    ASSERT_NE(p.reserve(RecordKind::whole, 4), nullptr);
    p.commit();
    auto* r = c.front();
    ASSERT_NE(r, nullptr);
    c.pop(r);
    c.release();
    EXPECT_EQ(c.front(), nullptr) << "leftover payload read as a record at " << off + 64;
    ASSERT_NE(p.reserve(RecordKind::whole, 4), nullptr);  // the second line, written now
    p.commit();
    ASSERT_NE(r = c.front(), nullptr);
    c.pop(r);
    c.release();
  }
}

// A drained ring's producer of small records goes back to the start once `wrap_at`
// bytes into a lap; the consumer follows it there.
TEST(ShmRing, ADrainedRingGoesBackToItsStartEarly) {
  RingMemory m;
  constexpr std::size_t wrap_at = 1024;
  RingProducer p(&m.control, m.data, sizeof m.data, wrap_at);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  for (std::uint64_t seq = 0; seq < 100; ++seq) {
    std::byte* at = p.reserve(RecordKind::whole, 40);
    ASSERT_NE(at, nullptr);
    // One-line records: the 16th ends at 1024 and takes the rest of the lap.
    EXPECT_EQ(at - m.data, static_cast<std::ptrdiff_t>((seq % 16) * 64 + kRecordHead)) << "record " << seq;
    std::memcpy(at, &seq, 8);
    p.commit();
    auto* r = c.front();
    ASSERT_NE(r, nullptr) << "record " << seq << " not found where the producer put it";
    std::uint64_t got = 0;
    std::memcpy(&got, RingConsumer::body(r), 8);
    EXPECT_EQ(got, seq);
    EXPECT_EQ(r->flags & kWrapAfter, seq % 16 == 15 ? kWrapAfter : 0) << "record " << seq;
    c.pop(r);
    c.release();
    EXPECT_EQ(c.front(), nullptr);
  }
  // Positions and indices still agree: the next record is where pending() looks.
  ASSERT_NE(p.reserve(RecordKind::whole, 8), nullptr);
  p.commit();
  EXPECT_TRUE(RingConsumer::pending(&m.control, m.data, sizeof m.data));
}

// A stream in windows, each answered once the consumer has taken it (a window of
// isends, then an acknowledgement): the producer passes wrap_at while the consumer is
// still at work, and goes back to the start at the first record after the answer, not
// only wrap_at bytes later (it swept the whole ring: a 4-byte rate of 18 MB/s against
// 34). An answer that finds the consumer still at work (traffic both ways) is not
// taken as a cue again until a scheduled look found it so too.
TEST(ShmRing, AStreamInAnsweredWindowsGoesBackAtTheAnswer) {
  RingMemory m;
  constexpr std::size_t wrap_at = 1024;
  RingProducer p(&m.control, m.data, sizeof m.data, wrap_at);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  auto write = [&](std::size_t n) {
    std::ptrdiff_t last = -1;
    for (std::size_t i = 0; i < n; ++i) {
      std::byte* at = p.reserve(RecordKind::whole, 4);
      EXPECT_NE(at, nullptr);
      if (!at) return last;
      p.commit();
      last = at - kRecordHead - m.data;
    }
    return last;
  };
  auto drain = [&] {
    while (auto* r = c.front()) c.pop(r);
    c.release();
  };
  // Window 1 (records 0-9 of 64 bytes) and window 2 (10-19), the consumer taking
  // nothing meanwhile: record 15 ends at 1024 and looks (lagging): on.
  write(10);
  p.answered();  // (an answer before the consumer took anything: a look at 1024 fails)
  EXPECT_EQ(write(10), 19 * 64) << "went back while the consumer lagged";
  drain();
  p.answered();
  EXPECT_EQ(write(1), 20 * 64) << "the first record after the answer";
  EXPECT_EQ(write(1), 0) << "not back at the start after the answer";
  drain();
  // Both ways: an answer while the consumer lags misses, and the next answer, with
  // the consumer drained, is no cue (the scheduled look is wrap_at bytes on).
  write(20);  // 1 .. 20, past 1024 at record 16 (a scheduled look: lagging)
  p.answered();
  EXPECT_EQ(write(1), 21 * 64) << "went back while the consumer lagged";
  drain();
  p.answered();
  EXPECT_EQ(write(1), 22 * 64) << "an answer after a missed one was taken as a cue";
}

// A consumer that has not taken everything keeps the whole ring; so do large records.
TEST(ShmRing, ALaggingConsumerOrLargeRecordsKeepTheWholeRing) {
  {
    RingMemory m;
    RingProducer p(&m.control, m.data, sizeof m.data, 1024);
    RingConsumer c(&m.control, m.data, sizeof m.data);
    int n = 0;
    while (std::byte* at = p.reserve(RecordKind::whole, 40)) {
      EXPECT_EQ(at - m.data, static_cast<std::ptrdiff_t>(n * 64 + kRecordHead));
      p.commit();
      ++n;
    }
    EXPECT_EQ(n, static_cast<int>(sizeof m.data / 64));  // as without going back early
    for (int i = 0; i < n; ++i) {
      auto* r = c.front();
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->flags, 0);
      c.pop(r);
    }
  }
  {
    RingMemory m;
    RingProducer p(&m.control, m.data, sizeof m.data, 1024);
    RingConsumer c(&m.control, m.data, sizeof m.data);
    // 320-byte records (above the 256 that may go back), each consumed at once.
    for (int i = 0; i < 40; ++i) {
      ASSERT_NE(p.reserve(RecordKind::whole, 300), nullptr);
      p.commit();
      auto* r = c.front();
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->flags, 0) << "record " << i;
      c.pop(r);
      c.release();
    }
  }
}

// In an exchange (answered after each record) records up to kWrapAnsweredRecords go
// back once `wrap_answered_at` bytes into a lap, a stream of them only at `wrap_at`,
// and larger records in an exchange at `wrap_at` too.
TEST(ShmRing, AnExchangeOfSmallRecordsCyclesThroughFewerLines) {
  RingMemory m;
  RingProducer p(&m.control, m.data, sizeof m.data, 4096, 16384, 512);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  auto one = [&](std::size_t body, bool answered) {
    if (answered) p.answered();
    std::byte* at = p.reserve(RecordKind::whole, body);
    EXPECT_NE(at, nullptr);
    p.commit();
    auto* r = c.front();
    EXPECT_NE(r, nullptr);
    if (r) c.pop(r);
    c.release();
    return at ? at - m.data - static_cast<std::ptrdiff_t>(kRecordHead) : -1;
  };
  auto furthest = [&](std::size_t body, bool answered) {
    std::ptrdiff_t most = 0;
    for (int i = 0; i < 200; ++i) most = std::max(most, one(body, answered));
    return most;
  };
  one(100, true);  // (answered() counts the answers after the last two records)
  EXPECT_LT(furthest(100, true), 512) << "an exchange of 128-byte records went past 512 bytes";
  EXPECT_GE(furthest(100, false), 4096 - 128) << "a stream went back before wrap_at";
  EXPECT_LT(furthest(100, false), 4096);
  one(1000, true);
  EXPECT_GE(furthest(1000, true), 4096 - 1088) << "an exchange of 1 KiB records went back before wrap_at";
}

// Larger records go back early only in an exchange: when the consumer's side sent
// something back after each of the producer's last two records (answered()). A burst
// after one answer keeps to fresh lines.
TEST(ShmRing, LargerRecordsGoBackEarlyOnlyWhenAnswered) {
  RingMemory m;
  constexpr std::size_t wrap_at = 1024;
  RingProducer p(&m.control, m.data, sizeof m.data, wrap_at, 512);
  RingConsumer c(&m.control, m.data, sizeof m.data);
  auto one = [&](std::size_t body) {
    std::byte* at = p.reserve(RecordKind::whole, body);
    EXPECT_NE(at, nullptr);
    p.commit();
    auto* r = c.front();
    EXPECT_NE(r, nullptr);
    std::uint8_t flags = r ? r->flags : 0;
    if (r) c.pop(r);
    c.release();
    return std::pair{at - m.data, flags};
  };
  // A burst (no answers): 320-byte records walk on past wrap_at.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(one(300).second, 0) << "record " << i;
  // Answered after every record: the next one past wrap_at goes back to the start.
  int wrapped = 0;
  for (int i = 0; i < 8 && !wrapped; ++i) {
    p.answered();
    if (one(300).second & kWrapAfter) wrapped = i + 1;
  }
  EXPECT_GT(wrapped, 0);
  EXPECT_EQ(one(300).first, static_cast<std::ptrdiff_t>(kRecordHead));  // at the start
  // One answer between bursts is not enough; nor is a record larger than wrap_records.
  for (int i = 0; i < 8; ++i) {
    if (i % 4 == 0) p.answered();
    EXPECT_EQ(one(300).second, 0) << "record " << i;
  }
  for (int i = 0; i < 8; ++i) {
    p.answered();
    EXPECT_EQ(one(600).second, 0) << "record " << i;
  }
  // A limit below the small records' (IPC_SHM_WRAP_RECORDS=0) leaves those going back.
  RingMemory m2;
  RingProducer small(&m2.control, m2.data, sizeof m2.data, wrap_at, 0);
  RingConsumer c2(&m2.control, m2.data, sizeof m2.data);
  bool back = false;
  for (int i = 0; i < 32 && !back; ++i) {
    ASSERT_NE(small.reserve(RecordKind::whole, 40), nullptr);
    small.commit();
    auto* r = c2.front();
    ASSERT_NE(r, nullptr);
    back = (r->flags & kWrapAfter) != 0;
    c2.pop(r);
    c2.release();
  }
  EXPECT_TRUE(back);
}

namespace {

// A producer thread and this one through a ring of 4 KiB: every record arrives, in
// order, with its bytes, whatever the sizes and the consumer's pace.
// `answer_every`: the producer waits for the consumer to take everything after about
// one record in that many (0: never).
void hammer(std::size_t wrap_at, std::size_t max_body, std::uint64_t count, unsigned answer_every,
            std::uint32_t seed, std::size_t wrap_records = kWrapRecords, std::size_t prefetch_lines = 0) {
  RingMemory m;
  RingProducer prod(&m.control, m.data, sizeof m.data, wrap_at, wrap_records, 0, prefetch_lines);
  RingConsumer cons(&m.control, m.data, sizeof m.data);
  std::atomic<bool> failed{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
  std::thread producer([&] {
    std::mt19937 rng(seed);
    for (std::uint64_t seq = 0; seq < count && !failed; ++seq) {
      std::size_t body = 8 + rng() % (std::min(max_body, prod.max_body()) - 8);  // odd sizes force pads at the end
      std::byte* at;
      while (!(at = prod.reserve(RecordKind::whole, body)) && !failed) std::this_thread::yield();
      if (!at) return;
      std::memcpy(at, &seq, 8);
      for (std::size_t i = 8; i < body; ++i) at[i] = static_cast<std::byte>(fill(seq, i));
      prod.commit();
      // Now and then, wait for an answer: until the consumer has taken everything (the
      // moments when a producer may go back early).
      if (answer_every && rng() % answer_every == 0) {
        while (m.control.head.load(std::memory_order_acquire) != prod.tail() && !failed) std::this_thread::yield();
        prod.answered();
      }
    }
  });
  std::uint64_t expect = 0;
  std::mt19937 pace(seed + 1);
  while (expect < count && !failed) {
    auto* r = cons.front();
    if (!r) {
      cons.release();  // as a drain does at its end
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "record " << expect << " never came";
        failed = true;
        break;
      }
      std::this_thread::yield();
      continue;
    }
    const std::byte* b = RingConsumer::body(r);
    std::uint64_t seq;
    std::memcpy(&seq, b, 8);
    if (seq != expect) {
      ADD_FAILURE() << "record " << expect << " came as " << seq;
      failed = true;
      break;
    }
    for (std::size_t i = 8; i < r->bytes; ++i)
      if (b[i] != static_cast<std::byte>(fill(seq, i))) {
        ADD_FAILURE() << "record " << seq << " byte " << i << " differs";
        failed = true;
        break;
      }
    cons.pop(r);
    if (seq % 3 == 0) cons.release();  // release in batches too
    if (pace() % 64 == 0) std::this_thread::yield();  // and fall behind now and then
    ++expect;
  }
  cons.release();
  producer.join();  // (it stops at `failed`)
  EXPECT_EQ(expect, count);
}

}  // namespace

TEST(ShmRing, TwoThreadsHammerWithWrapAround) { hammer(0, ~std::size_t{0}, 200000, 0, 1); }
// Mostly small records between larger ones: the producer writes the line next to the
// one the consumer reads.
TEST(ShmRing, TwoThreadsHammerSmallRecordsBetweenLargerOnes) { hammer(0, 40, 200000, 0, 5); }

// Small records going back early (and large ones, which never do) between them. (A
// wait for the consumer can cost a time slice on a loaded machine: few of them.)
TEST(ShmRing, TwoThreadsHammerGoingBackEarly) {
  hammer(512, 240, 20000, 8, 2);
  hammer(1024, ~std::size_t{0}, 20000, 8, 3);
  hammer(512, ~std::size_t{0}, 20000, 2, 4, 1024);  // larger records too, when answered
}

// With the write prefetch (ring.hpp): the same records, the same bytes, whatever the
// lead, up to the whole ring (the prefetches reach lines the consumer has not taken).
TEST(ShmRing, TwoThreadsHammerWithWritePrefetch) {
  hammer(0, 40, 100000, 0, 6, kWrapRecords, 8);
  hammer(512, 240, 20000, 8, 7, kWrapRecords, 8);
  hammer(0, ~std::size_t{0}, 20000, 0, 8, kWrapRecords, 1000);  // a lead past the ring: the whole ring
}

// The lines asked for ahead: from the second line past the record (never the next,
// where the consumer may poll) to the end of the lead, those asked for before left
// out, and none past the ring's end.
TEST(ShmRing, PrefetchedLinesLieAheadWithinTheRing) {
  constexpr std::size_t cap = 4096, ahead = 8 * kLine;
  const std::uint64_t lap = 10 * cap;  // positions of a later lap
  for (std::size_t next = 0; next < cap; next += kLine) {
    const std::uint64_t tail = lap + next;
    auto l = RingProducer::lines_ahead(next, tail, 0, ahead, cap);
    EXPECT_EQ(l.last, tail + std::min(ahead, cap - next)) << next;
    EXPECT_EQ(l.first, std::min(tail + kLine, l.last)) << next;
    EXPECT_LE(next + (l.last - tail), cap) << next;  // within the ring
    // After the record before, which asked for all but the last line of this lead:
    auto again = RingProducer::lines_ahead(next, tail, tail + ahead - kLine, ahead, cap);
    EXPECT_EQ(again.first, std::min(tail + ahead - kLine, again.last)) << next;
    EXPECT_EQ(again.last, l.last);
  }
  auto none = RingProducer::lines_ahead(0, lap, 0, 0, cap);  // no lead
  EXPECT_EQ(none.first, none.last);
  auto one = RingProducer::lines_ahead(0, lap, 0, kLine, cap);  // a lead of the next line alone
  EXPECT_EQ(one.first, one.last);
}

namespace {

struct Inbox : Sink {
  std::vector<std::byte> landing;
  std::atomic<std::uint64_t> got{0};
  std::uint64_t last = 0;
  std::uint64_t arriving = 0;
  Placement on_frame(int, std::span<const std::byte> h, std::uint64_t length) override {
    landing.resize(length);
    std::memcpy(&arriving, h.data(), sizeof arriving);
    return {landing.data(), nullptr};
  }
  void on_frame_done(int, void*) override {
    last = arriving;
    got.fetch_add(1);
  }
  void on_peer_lost(int, const std::string&) override {}
  void on_frame_aborted(int, void*) override {}
};

// Two ranks of one node as two transports in this process, each with its doorbell.
struct Node {
  std::unique_ptr<base::Doorbell> bell[2];
  std::unique_ptr<ShmTransport> t[2];
  Endpoint* ep[2] = {};
  std::string job;
  // `unheld`: the cards name a descriptor that cannot be opened (a /proc that refuses
  // it), so that peers map each other's segments by name while connecting.
  // `eager_room`: frames above an eager limit of 8 KiB and up to this go at once when
  // the ring has room for them (Options::eager_room).
  explicit Node(std::size_t ring = 64 * 1024, bool make_ready = true, bool cma = false, bool unheld = false,
                std::size_t eager_room = 0, std::size_t chunk = 16 * 1024, std::size_t eager_drained = 0,
                Options::Bounce bounce = Options::Bounce::when_slow) {
    job = "unit" + std::to_string(::getpid()) + "x" + std::to_string(std::random_device{}());
    PeerCard cards[2];
    for (int r = 0; r < 2; ++r) {
      bell[r] = std::make_unique<base::Doorbell>(base::doorbell_name(job, r));
      Options o;
      o.rank = r;
      o.size = 2;
      o.job = job;
      o.local_rank = r;
      o.local_size = 2;
      o.ring_bytes = ring;
      o.doorbell = bell[r].get();
      o.cma = cma;
      if (eager_room) {
        o.eager_limit = 8192;
        o.eager_room = eager_room;
      }
      o.chunk = chunk;
      o.eager_drained = eager_drained;
      o.bounce = bounce;
      t[r] = std::make_unique<ShmTransport>(o);
      cards[r].rank = r;
      cards[r].node = "n";
      cards[r].pid = ::getpid();
      cards[r].cards["shm"] = t[r]->card();
      if (unheld) cards[r].cards["shm"] = cards[r].cards["shm"].substr(0, cards[r].cards["shm"].rfind(',')) + ",999999";
    }
    ep[0] = &t[0]->connect(cards[1]);
    ep[1] = &t[1]->connect(cards[0]);
    if (make_ready) {
      t[0]->ready();
      t[1]->ready();
    }
  }
  // A frame whose head carries `seq` (what Inbox reads back).
  void send(int from, std::uint64_t seq, const void* payload, std::size_t len, Completion* done,
            std::uint64_t concerns = wire::kConcernsAll) {
    std::byte h[12] = {};
    std::memcpy(h, &seq, sizeof seq);
    ep[from]->send(wire::Frame{std::span<const std::byte>(h, sizeof h), payload, len, concerns}, done);
  }
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// The rings waiting at `bell`, taken.
int pending_rings(const base::Doorbell& bell) {
  int n = 0;
  char b[8];
  while (::recv(bell.fd(), b, sizeof b, MSG_DONTWAIT) > 0) ++n;
  return n;
}

std::atomic<std::uint64_t> g_sleeps{0};

// Sleeps the way the engine does: arm, sleep on the rank's doorbell unless input is
// there, drain it.
bool sleep_until_rung(ShmTransport& t, const base::Doorbell& bell, int timeout_ms) {
  bool armed = t.arm_sleep(wire::kConcernsAll);
  bool woke = true;
  if (armed) {
    ++g_sleeps;
    pollfd p{bell.fd(), POLLIN, 0};
    woke = ::poll(&p, 1, timeout_ms) > 0;
    bell.drain();
  }
  t.disarm_sleep(wire::kConcernsAll);
  return woke;
}

}  // namespace

TEST(ShmDoorbell, NoLostWakeupsOver100000Rounds) {
  Node node;
  Inbox in[2];
  const std::uint64_t rounds = 100000;
  g_sleeps = 0;
  std::atomic<bool> lost{false};
  std::uint64_t word = 0;
  // Rank 1 echoes every message back; both sleep between messages.
  std::thread echo([&] {
    for (std::uint64_t i = 0; i < rounds && !lost; ++i) {
      while (in[1].got.load() <= i) {
        if (node.t[1]->poll(in[1])) continue;
        if (!sleep_until_rung(*node.t[1], *node.bell[1], 5000)) {
          lost = true;
          return;
        }
      }
      node.send(1, i, &word, 8, nullptr);
    }
  });
  for (std::uint64_t i = 0; i < rounds && !lost; ++i) {
    node.send(0, i, &word, 8, nullptr);
    while (in[0].got.load() <= i) {
      if (node.t[0]->poll(in[0])) continue;
      if (!sleep_until_rung(*node.t[0], *node.bell[0], 5000)) {
        lost = true;
        break;
      }
    }
  }
  echo.join();
  EXPECT_FALSE(lost) << "a sleeper was not woken within 5 s";
  EXPECT_EQ(in[0].got.load(), rounds);
  EXPECT_EQ(in[1].last, rounds - 1);
  EXPECT_GT(g_sleeps.load(), rounds / 10) << "too few rounds actually slept to test anything";
}

// A burst to a sleeping rank rings its doorbell once: the senders after the first see
// that it was rung and that nobody has woken since (a ring is a system call); the
// thread that wakes clears that before it looks at its rings, so the next burst rings
// again, and nothing of a burst is left for a nap.
TEST(ShmDoorbell, ABurstRingsOnceUntilTheSleeperWakes) {
  Node node;
  Inbox in;
  std::uint64_t word = 0;
  auto rings = [&] { return pending_rings(*node.bell[1]); };
  for (std::uint64_t burst = 0; burst < 3; ++burst) {
    ASSERT_TRUE(node.t[1]->arm_sleep(wire::kConcernsAll)) << "burst " << burst;  // asleep: nothing is pending
    for (std::uint64_t i = 0; i < 10; ++i) node.send(0, burst * 10 + i, &word, 8, nullptr);
    EXPECT_EQ(rings(), 1) << "burst " << burst;
    node.t[1]->disarm_sleep(wire::kConcernsAll);  // woken
    while (node.t[1]->poll(in)) {
    }
    EXPECT_EQ(in.got.load(), (burst + 1) * 10);
  }
  // Nobody asleep: nobody is rung.
  node.send(0, 30, &word, 8, nullptr);
  EXPECT_EQ(rings(), 0);
}

// The thread that ends its sleep clears `rung`; when a record waits that a sender
// left unrung meanwhile, and another thread of the rank still sleeps, it wakes that
// one (it may leave without a poll of its own: a barrier's wait that is over).
TEST(ShmDoorbell, ClearingTheBellWakesAnotherSleeperForAnUnrungRecord) {
  Node node;
  Inbox in;
  std::uint64_t word = 0;
  auto rings = [&] { return pending_rings(*node.bell[1]); };
  ASSERT_TRUE(node.t[1]->arm_sleep(wire::kConcernsAll));  // thread E sleeps
  node.send(0, 0, &word, 8, nullptr);
  EXPECT_EQ(rings(), 1);  // E is woken
  while (node.t[1]->poll(in)) {
  }  // a poll (any thread's) takes the record
  ASSERT_TRUE(node.t[1]->arm_sleep(wire::kConcernsAll));  // thread D goes to sleep; E has not counted itself out
  node.send(0, 1, &word, 8, nullptr);
  EXPECT_EQ(rings(), 0);  // rung: the sender does not ring
  node.t[1]->disarm_sleep(wire::kConcernsAll);  // E ends its sleep, and may leave without polling
  EXPECT_EQ(rings(), 1) << "the thread still asleep is not woken for the record";
  node.t[1]->disarm_sleep(wire::kConcernsAll);  // D
  while (node.t[1]->poll(in)) {
  }
  EXPECT_EQ(in.got.load(), 2u);
}

// A thread that sleeps for frames of some classes (a receive of one context; none for a
// node group's wait) is rung for those and for frames that concern every sleeper, not
// for the others: a program thread in a barrier beside an RPC server that takes
// requests is left asleep.
TEST(ShmDoorbell, ASleeperForSomeClassesIsRungOnlyForFramesThatConcernIt) {
  Node node;
  Inbox in;
  std::uint64_t word = 0;
  auto rings = [&] { return pending_rings(*node.bell[1]); };
  const std::uint64_t mine = 1u << 3, other = 1u << 4;
  ASSERT_TRUE(node.t[1]->arm_sleep(mine));
  node.send(0, 0, &word, 8, nullptr, other);
  EXPECT_EQ(rings(), 0) << "rung for a frame of another class";
  node.send(0, 1, &word, 8, nullptr, other | mine);
  EXPECT_EQ(rings(), 1) << "not rung for a frame of its class";
  node.t[1]->disarm_sleep(mine);
  while (node.t[1]->poll(in)) {
  }
  EXPECT_EQ(in.got.load(), 2u);
  ASSERT_TRUE(node.t[1]->arm_sleep(0));  // for no frame: a node group's wait
  node.send(0, 2, &word, 8, nullptr, mine);
  EXPECT_EQ(rings(), 0);
  node.send(0, 3, &word, 8, nullptr);  // one that needs the rank to act (a ready-to-send)
  EXPECT_EQ(rings(), 1) << "not rung for a frame that concerns every sleeper";
  node.t[1]->disarm_sleep(0);
  while (node.t[1]->poll(in)) {
  }
  // The classes went with the last sleeper: a sleeper for any frame is rung for all.
  ASSERT_TRUE(node.t[1]->arm_sleep(wire::kConcernsAll));
  node.send(0, 4, &word, 8, nullptr, other);
  EXPECT_EQ(rings(), 1);
  node.t[1]->disarm_sleep(wire::kConcernsAll);
  while (node.t[1]->poll(in)) {
  }
  ASSERT_TRUE(node.t[1]->arm_sleep(mine));  // the classes of the earlier sleepers are gone
  node.send(0, 5, &word, 8, nullptr, other);
  EXPECT_EQ(rings(), 0);
  node.t[1]->disarm_sleep(mine);
}

// While a thread polls nobody rings; the poller that stops looks at its rings once
// more only when a frame was left unrung for a sleeper (of any frame, or of the
// frame's class), not for frames no sleeper waits for.
TEST(ShmDoorbell, APollerThatStopsLooksAgainOnlyForAFrameASleeperNeeds) {
  Node node;
  Inbox in;
  std::uint64_t word = 0;
  auto rings = [&] { return pending_rings(*node.bell[1]); };
  const std::uint64_t mine = 1u << 3, other = 1u << 4;
  ASSERT_TRUE(node.t[1]->arm_sleep(mine));  // thread S sleeps for its class
  EXPECT_FALSE(node.t[1]->polling(1));      // thread P polls
  node.send(0, 0, &word, 8, nullptr, other);
  EXPECT_FALSE(node.t[1]->polling(-1)) << "a look again for a frame that no sleeper waits for";
  EXPECT_FALSE(node.t[1]->polling(1));
  node.send(0, 1, &word, 8, nullptr, mine);
  EXPECT_EQ(rings(), 0) << "rung while a thread polls";
  EXPECT_TRUE(node.t[1]->polling(-1)) << "the frame left unrung for the sleeper is not looked for";
  while (node.t[1]->poll(in)) {
  }
  EXPECT_FALSE(node.t[1]->polling(1));
  EXPECT_FALSE(node.t[1]->polling(-1)) << "looked again with nothing left unrung";
  node.t[1]->disarm_sleep(mine);
  EXPECT_EQ(in.got.load(), 2u);
}

// Frames left waiting for room ring a sleeper whatever it sleeps for: it is to drain
// the ring for them to move.
TEST(ShmDoorbell, FramesWaitingForRoomRingASleeperOfAnotherClass) {
  Node node(8 * 1024);
  Inbox in;
  std::uint64_t word = 0;
  auto rings = [&] { return pending_rings(*node.bell[1]); };
  const std::uint64_t mine = 1u << 3, other = 1u << 4;
  ASSERT_TRUE(node.t[1]->arm_sleep(mine));
  std::uint64_t seq = 0;
  for (; seq < 20; ++seq) node.send(0, seq, &word, 8, nullptr, other);
  EXPECT_EQ(rings(), 0);
  for (; seq < 1000 && node.t[0]->idle(); ++seq) node.send(0, seq, &word, 8, nullptr, other);
  ASSERT_FALSE(node.t[0]->idle()) << "the ring never filled";
  EXPECT_EQ(rings(), 1) << "a sleeper is left asleep while frames wait for room in its ring";
  node.t[1]->disarm_sleep(mine);
  while (in.got.load() < seq) {
    node.t[1]->poll(in);
    node.t[0]->poll(in);
  }
  EXPECT_EQ(in.got.load(), seq);
}

// The offers of a large payload's second part (kSharedCopy): the receiver (rank 1)
// offers, the sender (rank 0) claims; whichever comes first wins, an offer is claimed
// only for its own rendezvous, and a slot comes back once freed.
TEST(ShmSharedCopy, AnOfferIsClaimedOrTakenBackNeverBoth) {
  Node node(64 * 1024, true, true);
  Endpoint& receiver = *node.ep[1];  // rank 1's way to rank 0, the sender
  Endpoint& sender = *node.ep[0];
  ASSERT_TRUE(receiver.caps() & kSharedCopy);
  EXPECT_EQ(receiver.offer(7, 4096), -1) << "offered a part of a payload below IPC_SHM_SHARED_COPY";
  const std::size_t big = 1u << 20;
  int slot = receiver.offer(7, big);
  ASSERT_GE(slot, 0);
  EXPECT_FALSE(sender.claim(slot, 8)) << "claimed for another rendezvous";
  EXPECT_FALSE(sender.claim(kCopySlots, 7)) << "claimed a slot that does not exist";
  EXPECT_TRUE(receiver.take_back(slot, 7));
  EXPECT_FALSE(sender.claim(slot, 7)) << "claimed an offer taken back";
  slot = receiver.offer(9, big);
  ASSERT_GE(slot, 0);
  EXPECT_TRUE(sender.claim(slot, 9));
  EXPECT_FALSE(sender.claim(slot, 9)) << "claimed twice";
  EXPECT_FALSE(receiver.take_back(slot, 9)) << "taken back after the sender claimed it";
  // Every slot taken: no offer; one freed: offered again.
  std::vector<int> taken{slot};
  for (int i = 1; i < kCopySlots; ++i) {
    int s = receiver.offer(100 + static_cast<std::uint64_t>(i), big);
    ASSERT_GE(s, 0);
    taken.push_back(s);
  }
  EXPECT_EQ(receiver.offer(200, big), -1);
  receiver.free_offer(slot);
  EXPECT_EQ(receiver.offer(201, big), slot);
}

TEST(ShmTransport, LargeFramesStreamInChunksAndAFullRingWakesItsProducer) {
  Node node(8 * 1024);  // a small ring: most frames wait for room
  Inbox in;
  std::vector<std::byte> big(3u << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 31 + (i >> 12));
  std::vector<std::byte> copy;
  std::atomic<int> received{0};
  std::thread reader([&] {
    struct Check : Sink {
      std::vector<std::byte>& out;
      std::atomic<int>& n;
      Check(std::vector<std::byte>& o, std::atomic<int>& c) : out(o), n(c) {}
      Placement on_frame(int, std::span<const std::byte>, std::uint64_t length) override {
        out.assign(length, std::byte{0});
        return {out.data(), nullptr};
      }
      void on_frame_done(int, void*) override { ++n; }
      void on_peer_lost(int, const std::string&) override {}
      void on_frame_aborted(int, void*) override {}
    } sink(copy, received);
    while (received.load() < 1) {
      if (!node.t[1]->poll(sink)) sleep_until_rung(*node.t[1], *node.bell[1], 5000);
    }
  });
  struct Flag : Completion {
    std::atomic<bool> done{false};
    void complete(const std::error_code&) override { done = true; }
  } sent;
  node.send(0, 1, big.data(), big.size(), &sent);
  while (!sent.done) {
    if (!node.t[0]->poll(in)) ASSERT_TRUE(sleep_until_rung(*node.t[0], *node.bell[0], 5000)) << "producer never woken for room";
  }
  reader.join();
  EXPECT_TRUE(node.t[0]->idle());
  EXPECT_EQ(copy, big);
}

// Eager frames that find the ring full are copied aside and their sends complete at
// once; the buffers of those copies are kept and used again (later bursts), and every
// frame arrives with its own bytes, whatever buffer carried it.
TEST(ShmTransport, EagerFramesQueuedBehindAFullRingKeepTheirBytes) {
  Node node(64 * 1024);
  constexpr std::size_t len = 12 * 1024;  // above the size copied into kept buffers
  constexpr int burst = 24;               // 288 KiB: most wait for room in the ring
  auto byte_of = [](std::uint64_t seq, std::size_t i) { return static_cast<std::byte>(seq * 131 + i * 7 + (i >> 9)); };
  struct Check : Sink {
    std::vector<std::byte> landing;
    std::uint64_t arriving = 0;
    int got = 0, bad = 0;
    decltype(byte_of)& expect;
    explicit Check(decltype(byte_of)& e) : expect(e) {}
    Placement on_frame(int, std::span<const std::byte> h, std::uint64_t length) override {
      landing.assign(length, std::byte{0});
      std::memcpy(&arriving, h.data(), sizeof arriving);
      return {landing.data(), nullptr};
    }
    void on_frame_done(int, void*) override {
      ++got;
      for (std::size_t i = 0; i < landing.size(); ++i)
        if (landing[i] != expect(arriving, i)) {
          ++bad;
          break;
        }
    }
    void on_peer_lost(int, const std::string&) override {}
    void on_frame_aborted(int, void*) override {}
  } sink(byte_of);
  struct Flag : Completion {
    bool done = false;
    void complete(const std::error_code&) override { done = true; }
  };
  Inbox back;
  std::vector<std::byte> buf(len);
  for (int round = 0; round < 3; ++round) {
    std::vector<Flag> flags(burst);
    for (int i = 0; i < burst; ++i) {
      std::uint64_t seq = static_cast<std::uint64_t>(round * burst + i);
      for (std::size_t b = 0; b < len; ++b) buf[b] = byte_of(seq, b);  // the last frame's bytes are overwritten
      node.send(0, seq, buf.data(), len, &flags[static_cast<std::size_t>(i)]);
      EXPECT_TRUE(flags[static_cast<std::size_t>(i)].done) << "eager send " << seq << " did not complete at once";
    }
    EXPECT_FALSE(node.t[0]->idle()) << "the burst should have waited for room";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sink.got < (round + 1) * burst && std::chrono::steady_clock::now() < deadline) {
      node.t[1]->poll(sink);
      node.t[0]->poll(back);  // moves queued frames into the room the reader made
    }
    ASSERT_EQ(sink.got, (round + 1) * burst);
    EXPECT_TRUE(node.t[0]->idle());
  }
  EXPECT_EQ(sink.bad, 0);
}

TEST(ShmTransport, SegmentsAreUnlinkedOnceReadyOrAtTheEnd) {
  std::string seg0, seg1;
  {
    Node node(64 * 1024, false);
    seg0 = "/dev/shm" + base::segment_name(node.job, 0);
    seg1 = "/dev/shm" + base::segment_name(node.job, 1);
    EXPECT_TRUE(exists(seg0));
    node.t[0]->ready();  // every peer has mapped it: the name goes, the mapping stays
    EXPECT_FALSE(exists(seg0));
    EXPECT_TRUE(exists(seg1));
    Inbox in;
    std::uint64_t w = 5;
    node.send(1, 9, &w, 8, nullptr);
    while (!node.t[0]->poll(in)) {
    }
    EXPECT_EQ(in.last, 9u);
  }
  EXPECT_FALSE(exists(seg1));  // never made ready: removed when the transport ends
}

TEST(ShmMemory, SegmentSizesFollowTheDocumentedFormula) {
  // docs/transports.md: each segment its 192-byte header and L controls of 192 B,
  // side by side and rounded up to 4 KiB (one page up to 20 ranks a node, 4 at 64),
  // then L rings.
  for (std::uint32_t l : {2u, 8u, 16u, 20u}) EXPECT_EQ(segment_bytes(l, 4096), 4096 + l * 4096);
  EXPECT_EQ(segment_bytes(21, 8192), 8192 + 21 * 8192);
  EXPECT_EQ(segment_bytes(64, 65536), 16384 + 64 * 65536);
  EXPECT_EQ(controls_bytes(64), 16384u);
  EXPECT_EQ(sizeof(RingControl), 192u);
  EXPECT_EQ(sizeof(SegmentHeader), 192u);
  // Automatic ring sizes: 512 KiB while 64 MiB per node allows, at least 64 KiB.
  ::unsetenv("IPC_SHM_RING");
  EXPECT_EQ(ShmTransport::ring_bytes_for(2), 512u << 10);
  EXPECT_EQ(ShmTransport::ring_bytes_for(8), 512u << 10);
  EXPECT_EQ(ShmTransport::ring_bytes_for(16), 256u << 10);
  EXPECT_EQ(ShmTransport::ring_bytes_for(64), 64u << 10);
  Node node(8192, false);
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm" + base::segment_name(node.job, 0)).c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), segment_bytes(2, 8192));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ShmMemory, ASegmentTakesItsControlsAtOnceAndARingOnlyWhenItIsMadePresent) {
  // What /dev/shm gives the segment (the file's allocated blocks): the header and
  // every control in the first pages at creation, then exactly one ring's pages.
  const std::string name = "/ipc-unit-sparse-" + std::to_string(::getpid());
  const std::uint32_t rings = 64;
  const std::size_t ring = 64 * 1024;
  auto taken = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(("/dev/shm" + name).c_str(), &st), 0);
    return static_cast<std::size_t>(st.st_blocks) * 512;
  };
  Segment s = Segment::create(name, rings, ring);
  EXPECT_EQ(taken(), controls_bytes(rings));
  EXPECT_EQ(controls_bytes(rings), 16384u);
  for (std::uint32_t r = 0; r < rings; ++r) {
    EXPECT_EQ(s.control(r)->head.load(), ring) << "ring " << r;  // initialised
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.data(r)) % 4096, 0u) << "ring " << r;
  }
  EXPECT_EQ(s.prefault_ring(37), "");
  EXPECT_EQ(taken(), controls_bytes(rings) + ring);
  EXPECT_EQ(s.data(37) + ring, s.data(38));
  s.unlink();
}

namespace {
// How many times this process maps the segment at `path` (/proc/self/maps).
int mappings_of(const std::string& path) {
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return -1;
  int n = 0;
  char line[4096];
  while (std::fgets(line, sizeof line, f))
    if (std::strstr(line, path.c_str())) ++n;
  std::fclose(f);
  return n;
}

struct Losses : Inbox {
  std::vector<std::pair<int, std::string>> lost;
  void on_peer_lost(int rank, const std::string& why) override { lost.emplace_back(rank, why); }
};
}  // namespace

TEST(ShmTransport, APeersSegmentIsMappedAtTheFirstSendThroughItsOwnersDescriptor) {
  Node node;  // ready: the names are gone
  const std::string seg0 = "/dev/shm" + base::segment_name(node.job, 0);
  EXPECT_FALSE(exists(seg0));
  EXPECT_EQ(mappings_of(seg0), 1);  // its owner's only: connecting mapped nothing
  Inbox in;
  std::uint64_t w = 5;
  node.send(1, 9, &w, 8, nullptr);
  EXPECT_EQ(mappings_of(seg0), 2);  // rank 1's, by /proc/<pid>/fd/<fd>
  while (!node.t[0]->poll(in)) {
  }
  EXPECT_EQ(in.last, 9u);
  node.send(1, 10, &w, 8, nullptr);
  EXPECT_EQ(mappings_of(seg0), 2);  // once
}

TEST(ShmTransport, ASegmentThatCannotBeMappedAnyMoreLosesThePeerWithTheReason) {
  Node node;
  node.t[0]->close();
  node.t[0].reset();  // rank 0 ends: its descriptor closes, its segment goes
  Losses sink;
  bool failed = false;
  struct Done : Completion {
    bool* failed;
    explicit Done(bool* f) : failed(f) {}
    void complete(const std::error_code& ec) override { *failed = static_cast<bool>(ec); }
  } done(&failed);
  std::uint64_t w = 5;
  node.send(1, 9, &w, 8, &done);
  EXPECT_TRUE(failed);
  node.t[1]->check_peers(sink);
  ASSERT_EQ(sink.lost.size(), 1u);
  EXPECT_EQ(sink.lost[0].first, 0);
  EXPECT_NE(sink.lost[0].second.find("ipc-"), std::string::npos) << sink.lost[0].second;  // names the segment
  node.t[1]->check_peers(sink);
  EXPECT_EQ(sink.lost.size(), 1u);  // once
}

TEST(ShmTransport, WithoutTheOwnersDescriptorsPeersMapSegmentsByNameWhileConnecting) {
  Node node(64 * 1024, false, false, true);
  const std::string seg0 = "/dev/shm" + base::segment_name(node.job, 0);
  EXPECT_EQ(mappings_of(seg0), 2);  // rank 1 mapped it in connect(), before the name goes
  node.t[0]->ready();
  node.t[1]->ready();
  EXPECT_FALSE(exists(seg0));
  Inbox in;
  std::uint64_t w = 5;
  node.send(1, 9, &w, 8, nullptr);
  while (!node.t[0]->poll(in)) {
  }
  EXPECT_EQ(in.last, 9u);
}

TEST(ShmMemory, OnlyRingsThatCarryTrafficTakePagesPollingIncluded) {
  Node node(64 * 1024, false);  // not ready: the names are there to stat
  const std::string seg0 = "/dev/shm" + base::segment_name(node.job, 0);
  const std::string seg1 = "/dev/shm" + base::segment_name(node.job, 1);
  auto taken = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return static_cast<std::size_t>(st.st_blocks) * 512;
  };
  Inbox in;
  for (int i = 0; i < 10; ++i) {  // polls and looks for sleepers' input touch no ring
    node.t[0]->poll(in);
    node.t[1]->poll(in);
    EXPECT_TRUE(node.t[0]->arm_sleep(wire::kConcernsAll));
    node.t[0]->disarm_sleep(wire::kConcernsAll);
  }
  EXPECT_EQ(taken(seg0), controls_bytes(2));
  EXPECT_EQ(taken(seg1), controls_bytes(2));
  std::uint64_t w = 5;
  node.send(1, 9, &w, 8, nullptr);
  EXPECT_FALSE(node.t[0]->arm_sleep(wire::kConcernsAll));  // the record is seen
  node.t[0]->disarm_sleep(wire::kConcernsAll);
  while (!node.t[0]->poll(in)) {
  }
  EXPECT_EQ(in.last, 9u);
  node.t[1]->poll(in);
  EXPECT_EQ(taken(seg0), controls_bytes(2) + 64 * 1024);  // rank 1's ring into rank 0
  EXPECT_EQ(taken(seg1), controls_bytes(2));
}

TEST(ShmTransport, AHeldDescriptorOfAnotherFileIsRefusedAndACardMustBeWellFormed) {
  // Another namespace's pid, or a reused one, may name a descriptor of another file:
  // the link must end with the segment's name.
  const std::string a = "/ipc-unit-held-a-" + std::to_string(::getpid());
  const std::string b = "/ipc-unit-held-b-" + std::to_string(::getpid());
  Segment sa = Segment::create(a, 2, 4096), sb = Segment::create(b, 2, 4096);
  EXPECT_TRUE(static_cast<bool>(Segment::open_held(::getpid(), sa.fd(), a)));
  try {
    Segment::open_held(::getpid(), sb.fd(), a);
    ADD_FAILURE() << "another segment's descriptor was taken for " << a;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not segment " + a), std::string::npos) << e.what();
  }
  sa.unlink();
  sb.unlink();
  EXPECT_TRUE(static_cast<bool>(Segment::open_held(::getpid(), sa.fd(), a)));  // unlinked: still it
  Node node;
  for (const char* bad : {"garbage", ",1,3", "/ipc-x,1", "/ipc-x,one,3", "/ipc-x,1,", "/ipc-x,1,-2", "/ipc-x,7,3"}) {
    PeerCard c;
    c.rank = 1;
    c.pid = ::getpid();
    c.cards["shm"] = bad;
    try {
      node.t[0]->connect(c);
      ADD_FAILURE() << "card '" << bad << "' accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("the card of rank 1"), std::string::npos) << e.what();
    }
  }
}

// Rendezvous payloads read from a peer's memory together (the engine's flush at the
// end of a poll): every byte of pieces of many sizes (empty ones, more than one call
// takes) in few system calls; a piece that cannot be read stops the batch there, the
// ones before it are in, and the endpoint keeps its single copy (read() alone drops it).
TEST(ShmTransport, ManyReadsFromAPeersMemoryGoInFewCallsAndStopAtTheFirstBadPiece) {
  Node node(64 * 1024, true, true);
  Endpoint& ep = *node.ep[1];
  ASSERT_TRUE(ep.caps() & kOneSidedRead);
  const std::size_t count = 150;
  std::vector<std::vector<std::byte>> from(count), to(count);
  std::vector<Endpoint::ReadPiece> pieces;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t n = i % 10 == 0 ? 0 : (i * 7919) % 70000 + 1;
    from[i].resize(n);
    for (std::size_t k = 0; k < n; ++k) from[i][k] = static_cast<std::byte>((i * 31 + k * 7) & 0xff);
    to[i].assign(n, std::byte{0});
    pieces.push_back({reinterpret_cast<std::uintptr_t>(from[i].data()), to[i].data(), n});
  }
  auto calls = node.t[1]->read_calls();
  EXPECT_EQ(ep.read_many(pieces.data(), count), count);
  for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(to[i], from[i]) << "piece " << i;
  EXPECT_LE(node.t[1]->read_calls() - calls, 4u) << "150 pieces took a call each";

  for (auto& t : to) std::fill(t.begin(), t.end(), std::byte{0});
  pieces[37].remote = 8;  // no such address in the peer
  calls = node.t[1]->read_calls();
  EXPECT_EQ(ep.read_many(pieces.data(), count), 37u);
  for (std::size_t i = 0; i < 37; ++i) ASSERT_EQ(to[i], from[i]) << "piece " << i;
  EXPECT_TRUE(ep.caps() & kOneSidedRead) << "a batch dropped the single copy";
  EXPECT_FALSE(ep.read(pieces[37].remote, pieces[37].dst, pieces[37].n));
  EXPECT_FALSE(ep.caps() & kOneSidedRead) << "a refused read() kept the single copy";
}

// Reads and writes whose destination lies 1-15 bytes past the source modulo 4 KiB (where
// some CPUs' kernel copy is slow, so they may go through a bounce buffer a piece at a
// time): every byte, for sizes around the bounce buffer's, among pieces that go
// directly; a bad piece still stops a batch there. With the bounce buffer, without
// it, and as measured here (IPC_SHM_BOUNCE=1 / 0 / auto).
void aliased_reads_and_writes(Options::Bounce bounce) {
  Node node(64 * 1024, true, true, false, 0, 16 * 1024, 0, bounce);
  Endpoint& ep = *node.ep[1];
  ASSERT_TRUE(ep.caps() & kOneSidedRead);
  const std::size_t sizes[] = {16 * 1024, 5000, 256 * 1024, 256 * 1024 + 1, 600 * 1024 + 77, 70000};
  const std::size_t shifts[] = {8, 0, 1, 15, 4, 64};  // destination past source, mod 4 KiB
  const std::size_t count = std::size(sizes);
  std::vector<std::vector<std::byte>> from(count), to(count);
  std::vector<Endpoint::ReadPiece> pieces;
  for (std::size_t i = 0; i < count; ++i) {
    from[i].resize(sizes[i] + 8192);
    to[i].assign(sizes[i] + 8192, std::byte{0});
    auto* src = from[i].data() + (4096 - reinterpret_cast<std::uintptr_t>(from[i].data()) % 4096) % 4096 + 100;
    auto* dst = to[i].data() + (4096 - reinterpret_cast<std::uintptr_t>(to[i].data()) % 4096) % 4096 + 100 + shifts[i];
    for (std::size_t k = 0; k < sizes[i]; ++k) src[k] = static_cast<std::byte>((i * 131 + k * 7 + (k >> 12)) & 0xff);
    pieces.push_back({reinterpret_cast<std::uintptr_t>(src), dst, sizes[i]});
  }
  auto same = [&](std::size_t i) {
    return std::memcmp(pieces[i].dst, reinterpret_cast<const void*>(pieces[i].remote), pieces[i].n) == 0;
  };
  auto untouched_around = [&](std::size_t i) {
    auto* d = static_cast<std::byte*>(pieces[i].dst);
    for (auto* p = to[i].data(); p < d; ++p)
      if (*p != std::byte{0}) return false;
    for (auto* p = d + pieces[i].n; p < to[i].data() + to[i].size(); ++p)
      if (*p != std::byte{0}) return false;
    return true;
  };
  EXPECT_EQ(ep.read_many(pieces.data(), count), count);
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_TRUE(same(i)) << "piece " << i;
    EXPECT_TRUE(untouched_around(i)) << "piece " << i;
  }
  for (std::size_t i = 0; i < count; ++i) {  // one by one, and from this side to the peer
    std::fill(to[i].begin(), to[i].end(), std::byte{0});
    EXPECT_TRUE(ep.read(pieces[i].remote, pieces[i].dst, pieces[i].n)) << "piece " << i;
    EXPECT_TRUE(same(i)) << "piece " << i;
    if (ep.caps() & kSharedCopy) {
      std::fill(to[i].begin(), to[i].end(), std::byte{0});
      EXPECT_TRUE(ep.write(reinterpret_cast<std::uintptr_t>(pieces[i].dst),
                           reinterpret_cast<const void*>(pieces[i].remote), pieces[i].n)) << "piece " << i;
      EXPECT_TRUE(same(i) && untouched_around(i)) << "written piece " << i;
    }
  }
  for (auto& t : to) std::fill(t.begin(), t.end(), std::byte{0});
  pieces[3].remote = 8;  // no such address in the peer: the batch stops there
  EXPECT_EQ(ep.read_many(pieces.data(), count), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(same(i)) << "piece " << i;
}

TEST(ShmTransport, ReadsAndWritesAtAliasedOffsetsCopyEveryByte) {
  aliased_reads_and_writes(Options::Bounce::always);
  aliased_reads_and_writes(Options::Bounce::never);
  aliased_reads_and_writes(Options::Bounce::when_slow);
}

// Every frame's bytes, kept, and the order of their sequence numbers (Node::send's head).
struct Frames : Sink {
  std::vector<std::vector<std::byte>> got;
  std::uint64_t arriving = 0;
  std::vector<std::uint64_t> order;
  Placement on_frame(int, std::span<const std::byte> h, std::uint64_t length) override {
    std::memcpy(&arriving, h.data(), sizeof arriving);
    got.emplace_back(length);
    return {got.back().data(), nullptr};
  }
  void on_frame_done(int, void*) override { order.push_back(arriving); }
  void on_peer_lost(int, const std::string&) override {}
  void on_frame_aborted(int, void*) override {}
};

// Frames above the eager limit and up to eager_room go through the ring at once, in
// several records, when it has room for all of them; else send_now() writes nothing
// (the engine sends by rendezvous then), as it does while the peer has frames waiting
// for this side (both CPUs copy then: one copy by the receiver costs less). Every frame
// that went arrives whole and in order.
TEST(ShmTransport, AFrameOfSeveralRecordsGoesAtOnceOnlyWhenTheRingHasRoomForAllOfIt) {
  Node node(256 * 1024, true, false, false, 64 * 1024);
  EXPECT_EQ(node.t[0]->eager_room_limit(), 64u * 1024);
  auto byte_of = [](std::uint64_t seq, std::size_t i) { return static_cast<std::byte>(seq * 37 + i * 11 + (i >> 10)); };
  std::vector<std::vector<std::byte>> sent;
  auto try_send = [&](int from, std::size_t len) {
    std::uint64_t seq = sent.size();
    std::vector<std::byte> payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = byte_of(seq, i);
    std::byte h[12] = {};
    std::memcpy(h, &seq, sizeof seq);
    bool ok = node.ep[from]->send_now(wire::Frame{std::span<const std::byte>(h, sizeof h), payload.data(), len});
    if (ok && from == 0) sent.push_back(std::move(payload));
    return ok;
  };
  Frames sink;
  auto drain = [&] {
    while (node.t[1]->poll(sink)) {
    }
  };

  sent.push_back({std::byte{7}});
  node.send(0, 0, sent[0].data(), 1, nullptr);  // the first send makes the ring present (send_now does not)
  ASSERT_TRUE(try_send(0, 40000)) << "a frame of 3 records into an empty ring";
  EXPECT_TRUE(node.t[0]->idle()) << "a frame sent at once left something queued";
  EXPECT_FALSE(try_send(0, 64 * 1024 + 1)) << "above eager_room";
  int fitted = 0;
  while (try_send(0, 40000)) ++fitted;  // the receiver takes nothing meanwhile
  EXPECT_GE(fitted, 2);
  EXPECT_LE(fitted, 5) << "more frames than the ring holds";
  EXPECT_TRUE(node.t[0]->idle()) << "a frame that found no room was queued (send_now writes all or nothing)";
  EXPECT_TRUE(try_send(0, 4000)) << "a one-record frame still fits";
  drain();
  ASSERT_TRUE(try_send(0, 40000)) << "room again once the receiver took the frames";

  // While the peer's frames wait for this side, larger frames are left to a rendezvous.
  Inbox back;
  std::byte small[100] = {};
  node.send(1, 999, small, sizeof small, nullptr);
  EXPECT_FALSE(try_send(0, 40000)) << "sent through the ring while the peer's frames waited here";
  EXPECT_TRUE(try_send(0, 8000)) << "a frame up to the eager limit goes whatever comes back";
  while (node.t[0]->poll(back)) {
  }
  EXPECT_EQ(back.got.load(), 1u);
  EXPECT_TRUE(try_send(0, 40000)) << "the peer's frames taken: through the ring again";

  drain();
  ASSERT_EQ(sink.order.size(), sent.size());
  for (std::size_t k = 0; k < sent.size(); ++k) {
    ASSERT_EQ(sink.order[k], k) << "frames out of order";
    ASSERT_EQ(sink.got[k], sent[k]) << "frame " << k << " arrived with other bytes";
  }
}

// With chunks small enough to go back to the ring's start early in an exchange
// (IPC_SHM_CHUNK up to IPC_SHM_WRAP_RECORDS), a frame written at once whose first record
// went back finds only the lap's first part free: the rest waits in the queue, copied
// (the sender's buffer is reused at once), and arrives whole and in order.
TEST(ShmTransport, AFrameWrittenAtOnceWhoseRecordWentBackEarlyQueuesTheRestCopied) {
  Node node(256 * 1024, true, false, false, 64 * 1024, 4096);
  auto byte_of = [](std::uint64_t seq, std::size_t i) { return static_cast<std::byte>(seq * 53 + i * 13 + (i >> 11)); };
  Frames sink;
  Inbox back;
  std::vector<std::vector<std::byte>> sent;
  std::byte small[8] = {};
  int queued = 0;
  node.send(1, 0, small, sizeof small, nullptr);  // the answers' ring made present
  // Sends a frame of `len` bytes (at once when `now`), lets the receiver take it and
  // answer, and takes the answer: an exchange.
  auto exchange = [&](std::size_t len, bool now) {
    std::uint64_t seq = sent.size();
    std::vector<std::byte> payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = byte_of(seq, i);
    std::byte h[12] = {};
    std::memcpy(h, &seq, sizeof seq);
    wire::Frame f{std::span<const std::byte>(h, sizeof h), payload.data(), len};
    if (now) {
      ASSERT_TRUE(node.ep[0]->send_now(f)) << "frame " << seq << ": a drained ring had no room";
      if (!node.t[0]->idle()) ++queued;
    } else {
      node.ep[0]->send(f, nullptr);
    }
    sent.push_back(payload);
    std::fill(payload.begin(), payload.end(), std::byte{0});  // the sender's buffer reused at once
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sink.order.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
      node.t[1]->poll(sink);
      node.t[0]->poll(back);  // moves what waits into the room the receiver made
    }
    ASSERT_EQ(sink.order.size(), sent.size()) << "frame " << seq;
    EXPECT_TRUE(node.t[0]->idle());
    node.send(1, 1, small, sizeof small, nullptr);
    while (node.t[0]->poll(back)) {
    }
  };
  exchange(1000, false);  // the first send makes the ring present
  for (int round = 0; round < 40; ++round) {
    exchange(3000 + static_cast<std::size_t>(round) * 61, true);  // one record each: answered
    exchange(2500, true);
    exchange(20000 + static_cast<std::size_t>(round) * 977 % 40000, true);  // several records
  }
  EXPECT_GT(queued, 0) << "no frame met a record that went back early: the case is not tested";
  for (std::size_t k = 0; k < sent.size(); ++k) {
    ASSERT_EQ(sink.order[k], k) << "frames out of order";
    ASSERT_EQ(sink.got[k], sent[k]) << "frame " << k << " arrived with other bytes";
  }
}

// Frames above eager_room and up to eager_drained go at once only when the receiver has
// taken everything sent before them (an exchange); in a stream they are left to the
// caller (a rendezvous).
TEST(ShmTransport, LargerFramesGoAtOnceOnlyIntoADrainedRing) {
  Node node(512 * 1024, true, false, false, 32 * 1024, 16 * 1024, 200 * 1024);
  EXPECT_EQ(node.t[0]->eager_room_limit(), 32u * 1024);
  EXPECT_EQ(node.t[0]->eager_drained_limit(), 200u * 1024);
  std::vector<std::byte> big(150000), small(20000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7 + (i >> 9));
  std::byte h[12] = {};
  auto now = [&](std::vector<std::byte>& b, std::size_t len) {
    return node.ep[0]->send_now(wire::Frame{std::span<const std::byte>(h, sizeof h), b.data(), len});
  };
  node.send(0, 0, small.data(), 1, nullptr);  // the first send makes the ring present
  Inbox in;
  while (node.t[1]->poll(in)) {
  }
  ASSERT_TRUE(now(big, big.size())) << "into a drained ring";
  EXPECT_TRUE(now(small, small.size())) << "up to eager_room: whenever there is room";
  EXPECT_FALSE(now(big, big.size())) << "went at once while the receiver had not taken what came before";
  EXPECT_FALSE(now(big, 200 * 1024 + 1)) << "above eager_drained";
  while (node.t[1]->poll(in)) {
  }
  EXPECT_EQ(in.got.load(), 3u);
  EXPECT_EQ(in.landing, small);
  ASSERT_TRUE(now(big, big.size())) << "drained again";
  while (node.t[1]->poll(in)) {
  }
  EXPECT_EQ(in.landing, big);
  EXPECT_TRUE(node.t[0]->idle());
}
