// One conformance suite for every transport of the seam (transport/transport.hpp):
// self, shm and tcp, each with real descriptors, sockets and shared memory. What the
// engine relies on: per-peer order, frames of every size from 0 B to 64 MiB with
// heads of every size, completion semantics, re-entrant sends from sink callbacks,
// a sink's refusal, a peer lost in the middle of a frame, many peers at once.
// Capabilities a transport lacks are skipped with the reason.
#include <sys/wait.h>

#include <algorithm>
#include <thread>

#include "transport_harness.hpp"

using namespace harness;

namespace {

class Conformance : public ::testing::TestWithParam<Kind> {
 protected:
  Kind kind() const { return GetParam(); }
  // The rank a frame from rank 0 goes to: itself for self.
  int peer() const { return kind() == Kind::self ? 0 : 1; }
};

std::string param_name(const ::testing::TestParamInfo<Kind>& info) { return name_of(info.param); }

}  // namespace

TEST_P(Conformance, FramesOfEverySizeArriveInOrderAndIntact) {
  Ranks r(kind(), 2);
  const int to = peer();
  EverySize frames;
  auto& [sizes, payloads, heads] = frames;
  Done done;
  for (std::size_t i = 0; i < sizes.size(); ++i) r.send(0, to, heads[i], payloads[i].data(), sizes[i], &done);
  ASSERT_TRUE(r.pump([&] { return r.sink[to].got.size() == sizes.size() && done.count == int(sizes.size()); }))
      << r.sink[to].got.size() << " of " << sizes.size() << " frames, " << done.count << " completions";
  EXPECT_EQ(done.failed, 0);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto& m = r.sink[to].got[i];
    EXPECT_EQ(m.peer, 0);
    EXPECT_EQ(m.head, heads[i]) << "head of frame " << i << " (" << sizes[i] << " B)";
    EXPECT_TRUE(m.data == payloads[i]) << "payload of frame " << i << " (" << sizes[i] << " B)";
  }
  EXPECT_TRUE(r.t[0]->idle());
}

TEST_P(Conformance, ManySmallFramesKeepTheirOrder) {
  Ranks r(kind(), 2);
  const int to = peer();
  const std::uint32_t count = 20000;
  std::uint64_t word = 7;
  for (std::uint32_t i = 0; i < count; ++i) {
    r.send(0, to, head(i), &word, i % 3 == 0 ? 0 : 8, nullptr);
    if (i % 64 == 0) r.t[0]->poll(r.sink[0]);  // senders poll too: queued frames move
  }
  ASSERT_TRUE(r.pump([&] { return r.sink[to].got.size() == count; }));
  for (std::uint32_t i = 0; i < count; ++i) ASSERT_EQ(tag_of(r.sink[to].got[i].head), i);
}

TEST_P(Conformance, ACompletedSendNoLongerNeedsItsPayload) {
  // A send's payload is the sender's again once its completion came: overwriting it
  // then must not change what arrives (small frames copied or sent at once, large
  // ones when they have left).
  Ranks r(kind(), 2);
  const int to = peer();
  std::vector<std::size_t> sizes{8, 1000, 60000, 3u << 20};
  std::vector<std::vector<std::byte>> bufs, want;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    bufs.push_back(pattern(sizes[i], static_cast<std::uint32_t>(i + 1)));
    want.push_back(bufs.back());
  }
  struct Scribble : Completion {
    std::vector<std::byte>* buf = nullptr;
    int fired = 0;
    void complete(const std::error_code&) override {
      ++fired;
      std::fill(buf->begin(), buf->end(), std::byte{0xee});
    }
  };
  std::vector<Scribble> done(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    done[i].buf = &bufs[i];
    r.send(0, to, head(static_cast<std::uint32_t>(i)), bufs[i].data(), sizes[i], &done[i]);
  }
  ASSERT_TRUE(r.pump([&] { return r.sink[to].got.size() == sizes.size(); }));
  ASSERT_TRUE(r.pump([&] { return std::all_of(done.begin(), done.end(), [](auto& d) { return d.fired > 0; }); }));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(done[i].fired, 1) << "one completion per send";
    EXPECT_TRUE(r.sink[to].got[i].data == want[i]) << "frame " << i << " changed after its completion";
  }
}

TEST_P(Conformance, SinkCallbacksMaySendAgain) {
  // The engine answers frames from inside the sink (a clear-to-send from on_frame, a
  // reply from on_frame_done): here rank `to` echoes every frame back from its
  // callbacks, and rank 0 sends the next from its own, 2,000 rounds.
  Ranks r(kind(), 2);
  const int to = peer();
  const std::uint32_t rounds = 2000;
  std::uint64_t payload = 42;
  int starts_seen = 0;
  r.sink[to].on_start = [&](int) { ++starts_seen; };
  if (to != 0) {
    r.sink[to].on_done = [&](const Collect::Msg& m) {
      r.send(to, 0, m.head, m.data.data(), m.data.size(), nullptr);
    };
    r.sink[0].on_done = [&](const Collect::Msg& m) {
      std::uint32_t next = tag_of(m.head) + 1;
      if (next < rounds) r.send(0, to, head(next), &payload, sizeof payload, nullptr);
    };
  } else {  // self: one sink both sends and receives
    r.sink[0].on_done = [&](const Collect::Msg& m) {
      std::uint32_t next = tag_of(m.head) + 1;
      if (next < rounds) r.send(0, 0, head(next), &payload, sizeof payload, nullptr);
    };
  }
  r.send(0, to, head(0), &payload, sizeof payload, nullptr);
  ASSERT_TRUE(r.pump([&] { return r.sink[0].got.size() == rounds; }));
  for (std::uint32_t i = 0; i < rounds; ++i) ASSERT_EQ(tag_of(r.sink[0].got[i].head), i);
  EXPECT_GE(starts_seen, static_cast<int>(rounds));
}

TEST_P(Conformance, ARefusedHeadDropsThePeer) {
  Ranks r(kind(), 2);
  const int to = peer();
  r.sink[to].refuse = "malformed head (test)";
  std::uint64_t w = 1;
  r.send(0, to, head(1), &w, sizeof w, nullptr);
  ASSERT_TRUE(r.pump([&] { return !r.sink[to].lost.empty(); }));
  EXPECT_EQ(r.sink[to].lost[0].first, 0);
  EXPECT_NE(r.sink[to].lost[0].second.find("malformed head (test)"), std::string::npos) << r.sink[to].lost[0].second;
  // Nothing more is delivered from it, and the loss is reported once.
  r.sink[to].refuse = nullptr;
  r.send(0, to, head(2), &w, sizeof w, nullptr);
  for (int i = 0; i < 2000; ++i)
    for (int q = 0; q < r.n; ++q) r.t[q]->poll(r.sink[q]);
  EXPECT_TRUE(r.sink[to].got.empty());
  EXPECT_EQ(r.sink[to].lost.size(), 1u);
}

TEST_P(Conformance, APeerLostMidFrameIsAbortedThenReportedOnce) {
  if (kind() == Kind::self) GTEST_SKIP() << "self has no peer to lose";
  // shm learns of a loss from the peer's process being gone: the card of rank 0 names
  // a process that has ended. tcp learns it from the connection.
  std::vector<int> pids;
  if (kind() == Kind::shm) {
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    pids = {child, ::getpid()};
  }
  Ranks r(kind(), 2, pids);
  auto big = pattern(8u << 20, 3);
  Done done;
  r.send(0, 1, head(9), big.data(), big.size(), &done);
  // Until rank 1 has the head and part of the payload.
  ASSERT_TRUE(r.pump([&] { return r.sink[1].started == 1; }));
  for (int i = 0; i < 4; ++i) r.t[1]->poll(r.sink[1]);
  ASSERT_TRUE(r.sink[1].got.empty()) << "the frame should still be on its way";
  if (over_tcp(kind())) {
    r.t[0].reset();  // rank 0 ends: its connection breaks mid-frame
    ASSERT_TRUE(r.pump([&] { return !r.sink[1].lost.empty(); }));
  } else {
    r.t[1]->check_peers(r.sink[1]);
  }
  EXPECT_EQ(r.sink[1].aborted, 1);
  ASSERT_EQ(r.sink[1].lost.size(), 1u);
  EXPECT_EQ(r.sink[1].lost[0].first, 0);
  EXPECT_TRUE(r.sink[1].got.empty());
  for (int i = 0; i < 100; ++i) {
    r.t[1]->poll(r.sink[1]);
    r.t[1]->check_peers(r.sink[1]);
  }
  EXPECT_EQ(r.sink[1].lost.size(), 1u) << "a loss is reported once";
  // A send to the lost peer completes with an error (or is dropped by a transport
  // that cannot tell yet), never hangs a completion forever on a closed transport.
  Done after;
  std::uint64_t w = 1;
  r.send(1, 0, head(1), &w, sizeof w, &after);
  r.t[1]->close();
  EXPECT_EQ(after.count, 1);
}

TEST_P(Conformance, ManyPeersAllToAll) {
  if (kind() == Kind::self) GTEST_SKIP() << "self reaches only its own rank";
  const int n = 6;
  const std::uint32_t per_pair = 200;
  Ranks r(kind(), n);
  std::vector<std::vector<std::byte>> payloads;
  for (std::uint32_t i = 0; i < per_pair; ++i) payloads.push_back(pattern(i * 97 % 70000, i));
  Done done;
  for (std::uint32_t i = 0; i < per_pair; ++i)
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        if (a != b) r.send(a, b, head(i), payloads[i].data(), payloads[i].size(), &done);
  const int total = n * (n - 1) * static_cast<int>(per_pair);
  ASSERT_TRUE(r.pump([&] {
    std::size_t got = 0;
    for (auto& s : r.sink) got += s.got.size();
    return got == static_cast<std::size_t>(total) && done.count == total;
  }));
  for (int b = 0; b < n; ++b)
    for (int a = 0; a < n; ++a) {
      if (a == b) continue;
      auto msgs = r.sink[b].from(a);
      ASSERT_EQ(msgs.size(), per_pair);
      for (std::uint32_t i = 0; i < per_pair; ++i) {
        ASSERT_EQ(tag_of(msgs[i].head), i) << a << " -> " << b;
        ASSERT_TRUE(msgs[i].data == payloads[i]) << a << " -> " << b << " frame " << i;
      }
    }
  for (auto& s : r.sink) EXPECT_TRUE(s.lost.empty());
}

TEST_P(Conformance, CloseCompletesWhatIsQueuedWithAnError) {
  if (kind() == Kind::self) GTEST_SKIP() << "self copies every frame at send";
  Ranks r(kind(), 2);
  auto big = pattern(32u << 20, 5);
  Done done;
  r.send(0, 1, head(1), big.data(), big.size(), &done);  // far more than a ring or a socket buffer holds
  r.t[0]->close();
  EXPECT_EQ(done.count, 1);
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance, ::testing::Values(Kind::self, Kind::shm, Kind::tcp, Kind::tls),
                         param_name);
