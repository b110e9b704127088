// In-process tests of the parts between ipcrun and its node agents: the job
// message, the store's per-client replies, and the link's framing and liveness.
// The real thing (agents through ssh) is tested by tests/cluster/multihost.sh.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "agent.hpp"
#include "kv_root.hpp"
#include "link.hpp"

using namespace ipc::launcher;
using namespace std::chrono_literals;

TEST(AgentJob, RoundTrips) {
  AgentJob j;
  j.secret_hex = std::string(64, 'a');
  j.job_id = "0000abcd0123456789abcdef";
  j.size = 6;
  j.node = "node2";
  j.cwd = "/tmp/x y";
  j.program = "/bin/echo";
  j.argv = {"echo", "", "two words"};
  j.env = {"A=1", "B="};
  j.ranks = {2, 3};
  j.tcp_addr = "10.0.0.2";
  j.first_cpu = 4;
  j.tag_output = true;
  j.stdin_mode = "link";
  j.link_timeout_ms = 2500;
  auto k = AgentJob::decode(j.encode());
  EXPECT_EQ(k.secret_hex, j.secret_hex);
  EXPECT_EQ(k.size, 6);
  EXPECT_EQ(k.cwd, "/tmp/x y");
  EXPECT_EQ(k.argv, j.argv);
  EXPECT_EQ(k.env, j.env);
  EXPECT_EQ(k.ranks, j.ranks);
  EXPECT_EQ(k.first_cpu, 4);
  EXPECT_TRUE(k.tag_output);
  EXPECT_EQ(k.stdin_mode, "link");
  EXPECT_EQ(k.link_timeout_ms, 2500);
}

TEST(AgentJob, MalformedIsRefused) {
  AgentJob j;
  j.size = 2;
  j.ranks = {0, 1};
  auto parts = j.encode();
  EXPECT_THROW(AgentJob::decode({parts.begin(), parts.begin() + 5}), std::runtime_error);
  auto bad = parts;
  bad[2] = "two";
  EXPECT_THROW(AgentJob::decode(bad), std::runtime_error);
  bad = parts;
  bad[11] = "1000";  // an argv count past the end
  EXPECT_THROW(AgentJob::decode(bad), std::runtime_error);
}

TEST(AgentJob, NumbersAreWholeAndWithinTheirRanges) {
  AgentJob j;
  j.size = 2;
  j.ranks = {0, 1};
  auto parts = j.encode();  // the ranks last
  auto refused = [&](std::size_t at, const char* text) {
    auto bad = parts;
    bad[at] = text;
    EXPECT_THROW(AgentJob::decode(bad), std::runtime_error) << "part " << at << " = '" << text << "'";
  };
  refused(parts.size() - 1, "x");   // std::stoi threw std::invalid_argument
  refused(parts.size() - 1, "1x");  // std::stoi took it for 1
  refused(parts.size() - 1, "2");   // not a rank of a job of 2
  refused(parts.size() - 1, "0");   // ranks come in rank order, once each
  refused(2, "4294967298");         // a size that an int wraps to 2
  refused(2, "0");
  refused(7, "-2");  // first_cpu: -1 (no binding) or a CPU
  refused(10, "-1");  // link_timeout_ms
  EXPECT_EQ(AgentJob::decode(parts).ranks, (std::vector<int>{0, 1}));
}

TEST(KvRoot, RepliesOncePerClientAndFencesCarryTheNewValues) {
  std::vector<std::tuple<int, std::string, std::string>> values;
  std::vector<std::pair<int, std::vector<std::string>>> fenced;
  std::vector<std::string> reports;
  KvRoot root(4, {[&](int c, const std::string& k, const std::string& v) { values.emplace_back(c, k, v); },
                  [&](int c, const KvRoot::Pairs& p) { fenced.emplace_back(c, *p); },
                  [&](const std::string& line) { reports.push_back(line); }});
  root.get(1, "k");  // held until the put
  EXPECT_TRUE(values.empty());
  root.put("k", "v1");
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0], std::make_tuple(1, std::string("k"), std::string("v1")));
  root.report(3, "from 3");
  root.report(0, "from 0");
  for (int r = 0; r < 4; ++r) root.fence(r < 2 ? 0 : 1, r);  // ranks 0, 1 on client 0; 2, 3 on client 1
  ASSERT_EQ(fenced.size(), 2u);  // once per client
  EXPECT_EQ(fenced[0].second, (std::vector<std::string>{"k", "v1"}));
  EXPECT_EQ(reports, (std::vector<std::string>{"from 0", "from 3"}));  // by rank, at the fence
  root.put("k", "v2");
  root.rank_gone(3);  // the next fence completes without it
  for (int r = 0; r < 3; ++r) root.fence(r < 2 ? 0 : 1, r);
  ASSERT_EQ(fenced.size(), 4u);
  EXPECT_EQ(fenced[3].second, (std::vector<std::string>{"k", "v2"}));
  EXPECT_EQ(root.fences_completed(), 2u);
}

namespace {

struct LinkPair {
  asio::io_context io;
  std::shared_ptr<Link> a, b;
  std::vector<std::pair<LinkOp, std::vector<std::string>>> got_a, got_b;
  std::string lost_a, lost_b;

  explicit LinkPair(std::chrono::milliseconds timeout) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = std::make_shared<Link>(io, sv[0], sv[0],
                               Link::Handlers{[this](LinkOp op, std::vector<std::string>& p) { got_a.emplace_back(op, p); },
                                              [this](const std::string& why) { lost_a = why; }},
                               timeout);
    b = std::make_shared<Link>(io, sv[1], sv[1],
                               Link::Handlers{[this](LinkOp op, std::vector<std::string>& p) { got_b.emplace_back(op, p); },
                                              [this](const std::string& why) { lost_b = why; }},
                               timeout);
    a->start();
    b->start();
  }
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) io.run_for(10ms);
    return done();
  }
};

}  // namespace

TEST(Link, CarriesMessagesBothWaysLargeOnesToo) {
  LinkPair p(10s);
  std::string big(3 << 20, 'x');
  p.a->send(LinkOp::output, {"1", big});
  p.b->send(LinkOp::signal, {"15"});
  ASSERT_TRUE(p.run_until([&] { return p.got_b.size() == 1 && p.got_a.size() == 1; }, 5s));
  EXPECT_EQ(p.got_b[0].first, LinkOp::output);
  EXPECT_EQ(p.got_b[0].second[1].size(), big.size());
  EXPECT_EQ(p.got_a[0].second, (std::vector<std::string>{"15"}));
  bool flushed = false;
  p.a->when_flushed([&] { flushed = true; });
  ASSERT_TRUE(p.run_until([&] { return flushed; }, 5s));
}

TEST(Link, SilenceLosesItHeartbeatsKeepItAndEndOfFileLosesItAtOnce) {
  LinkPair p(2500ms);  // heartbeats every second: a loaded machine has 1.5 s to spare
  // Both sides run: heartbeats keep the link for longer than the timeout.
  p.run_until([] { return false; }, 3500ms);
  EXPECT_EQ(p.lost_a, "");
  EXPECT_EQ(p.lost_b, "");
  EXPECT_TRUE(p.got_a.empty());  // heartbeats are not messages
  // One side paused: the other is not lost while reading is paused on purpose.
  p.a->pause_reading(true);
  p.run_until([] { return false; }, 3500ms);
  EXPECT_EQ(p.lost_a, "");
  p.a->pause_reading(false);
  // One side gone: the other sees end of file.
  p.b->close();
  ASSERT_TRUE(p.run_until([&] { return !p.lost_a.empty(); }, 5s));
  EXPECT_EQ(p.lost_a, "closed");
}

namespace {

// One link whose other end the test holds raw (sv[1]), and why it was lost.
struct LoneLink {
  asio::io_context io;
  int sv[2] = {-1, -1};
  std::string lost;
  std::shared_ptr<Link> link;

  explicit LoneLink(std::chrono::milliseconds timeout) {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    link = std::make_shared<Link>(io, sv[0], sv[0],
                                  Link::Handlers{[](LinkOp, std::vector<std::string>&) {},
                                                 [this](const std::string& why) { lost = why; }},
                                  timeout);
    link->start();
  }
  ~LoneLink() { ::close(sv[1]); }
  void run_until_lost(std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (lost.empty() && std::chrono::steady_clock::now() < until) io.run_for(20ms);
  }
};

}  // namespace

TEST(Link, ASilentPeerIsLostAfterTheTimeout) {
  LoneLink l(1200ms);
  l.run_until_lost(6s);
  EXPECT_EQ(l.lost, "no word for 1.2 s");
}

TEST(Link, AMalformedFrameLosesIt) {
  LoneLink l(10s);
  const unsigned char junk[] = {2, 0, 0, 0, 1, 2};  // a body shorter than its header
  ASSERT_EQ(::write(l.sv[1], junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  l.run_until_lost(5s);
  EXPECT_EQ(l.lost.rfind("malformed message", 0), 0u) << l.lost;
}
