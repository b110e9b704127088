// Messages to self (blocking send before the receive, small and large), and every
// kind of value between ranks: scalars, structs, vectors, strings, spans, maps,
// nested vectors, user types with serialize(); probe; wait_any; truncation errors.
#include <ipc/ipc.hpp>

#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

struct Particle {
  double pos[3];
  int id;
};

struct Job {
  std::string name;
  std::map<std::string, double> params;
  std::vector<std::vector<int>> grid;
  template <class A>
  void serialize(A& ar) {
    ar(name, params, grid);
  }
  bool operator==(const Job&) const = default;
};

}  // namespace

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();

  // Self: a blocking send first, then the receive, small and 16 MiB.
  c.send(42, me, ipc::Tag{1});
  IT_CHECK(me, c.recv<int>(me, ipc::Tag{1}) == 42, "self int");
  std::vector<double> big(2u << 20);
  std::iota(big.begin(), big.end(), 0.5);
  c.send(big, me, ipc::Tag{2});
  auto back = c.recv<std::vector<double>>(me, ipc::Tag{2});
  IT_CHECK(me, back == big, "self 16 MiB");

  // Every kind of value to the right neighbour.
  int right = (me + 1) % n, left = (me + n - 1) % n;
  Particle p{{1.0 * me, 2.0, 3.0}, me};
  Job job{"sweep-" + std::to_string(me), {{"alpha", 0.5}, {"beta", me * 1.0}}, {{1, 2}, {}, {me}}};
  std::string text(1000 + me, 'a' + me % 26);
  int raw[6] = {me, 1, 2, 3, 4, 5};
  std::vector<ipc::Request> sends;
  sends.push_back(c.isend(p, right, ipc::Tag{10}));
  sends.push_back(c.isend(job, right, ipc::Tag{11}));
  sends.push_back(c.isend(text, right, ipc::Tag{12}));
  sends.push_back(c.isend(std::span<const int>(raw, 6), right, ipc::Tag{13}));
  sends.push_back(c.isend(std::vector<std::string>{"x", std::to_string(me)}, right, ipc::Tag{14}));

  auto st = c.probe(left, ipc::Tag{12});
  IT_CHECK(me, st.bytes == 1000u + left && st.source == left, "probe: %zu bytes from %d", st.bytes, st.source);
  IT_CHECK(me, !c.iprobe(left, ipc::Tag{99}), "iprobe found a message that was never sent");

  Particle q{};
  c.recv(q, left, ipc::Tag{10});
  IT_CHECK(me, q.id == left && q.pos[0] == 1.0 * left, "particle");
  Job j2 = c.recv<Job>(left, ipc::Tag{11});
  IT_CHECK(me, j2.name == "sweep-" + std::to_string(left) && j2.params.at("beta") == left * 1.0 &&
                   j2.grid.size() == 3 && j2.grid[2][0] == left,
           "job");
  std::string t2;
  c.recv(t2, left, ipc::Tag{12});
  IT_CHECK(me, t2 == std::string(1000 + left, 'a' + left % 26), "string");
  int into[10] = {};
  auto s4 = c.recv(std::span<int>(into), left, ipc::Tag{13});
  IT_CHECK(me, s4.count<int>() == 6 && into[0] == left && into[5] == 5, "span: %zu ints", s4.count<int>());
  auto words = c.recv<std::vector<std::string>>(left, ipc::Tag{14});
  IT_CHECK(me, words.size() == 2 && words[1] == std::to_string(left), "vector of strings");
  ipc::wait_all(sends);

  // wait_any drains a set.
  std::vector<int> vals(3, -1);
  std::vector<ipc::Request> rs;
  for (int k = 0; k < 3; ++k) rs.push_back(c.irecv(vals[k], left, ipc::Tag{20 + k}));
  for (int k = 2; k >= 0; --k) c.send(k * 10 + me, right, ipc::Tag{20 + k});
  for (int k = 0; k < 3; ++k) {
    ipc::Status s;
    auto i = ipc::wait_any(rs, &s);
    IT_CHECK(me, vals[i] == static_cast<int>(i) * 10 + left, "wait_any %zu", i);
    IT_CHECK(me, !rs[i].valid(), "wait_any did not reset the handle");
  }
  IT_CHECK(me, ipc::wait_any(rs) == rs.size(), "wait_any on a drained set did not return its size");
  // wait_some takes what has completed, and ends with an empty list.
  for (int k = 0; k < 3; ++k) rs[k] = c.irecv(vals[k], left, ipc::Tag{40 + k});
  for (int k = 0; k < 3; ++k) c.send(k + 100 * me, right, ipc::Tag{40 + k});
  std::size_t taken = 0;
  std::vector<ipc::Status> sts;
  for (std::vector<std::size_t> got; !(got = ipc::wait_some(rs, &sts)).empty();)
    for (auto i : got) {
      IT_CHECK(me, vals[i] == static_cast<int>(i) + 100 * left && sts[i].tag.value == 40 + static_cast<int>(i),
               "wait_some %zu: %d", i, vals[i]);
      IT_CHECK(me, !rs[i].valid(), "wait_some did not reset the handle");
      ++taken;
    }
  IT_CHECK(me, taken == 3, "wait_some took %zu of 3", taken);

  // A message larger than the receive buffer is a Truncation error, and the next
  // message still arrives.
  c.send(std::vector<int>(100, 1), right, ipc::Tag{30});
  c.send(7, right, ipc::Tag{31});
  int small[4];
  bool truncated = false;
  try {
    c.recv(std::span<int>(small), left, ipc::Tag{30});
  } catch (const ipc::Truncation&) {
    truncated = true;
  }
  IT_CHECK(me, truncated, "no truncation error");
  IT_CHECK(me, c.recv<int>(left, ipc::Tag{31}) == 7, "message after a truncation");

  // The same through non-blocking receives, which place raw values and spans
  // themselves (post_recv_raw): a raw value takes exactly its size, a span up to its.
  c.send(2.5, right, ipc::Tag{32});
  c.send(std::vector<int>(100, 2), right, ipc::Tag{33});
  c.send(std::vector<int>{5, 6}, right, ipc::Tag{34});
  int as_int = 0;
  int roomy[8] = {};
  auto r_int = c.irecv(as_int, left, ipc::Tag{32});
  auto r_small = c.irecv(std::span<int>(small), left, ipc::Tag{33});
  auto r_roomy = c.irecv(std::span<int>(roomy), left, ipc::Tag{34});
  bool int_failed = false, small_failed = false;
  try {
    r_int.wait();
  } catch (const ipc::Truncation&) {
    int_failed = true;
  }
  try {
    r_small.wait();
  } catch (const ipc::Truncation&) {
    small_failed = true;
  }
  ipc::Status got = r_roomy.wait();
  IT_CHECK(me, int_failed, "a double received by irecv into an int did not fail");
  IT_CHECK(me, small_failed, "100 ints received by irecv into a span of 4 did not fail");
  IT_CHECK(me, got.bytes == 2 * sizeof(int) && roomy[0] == 5 && roomy[1] == 6 && roomy[2] == 0,
           "a span takes a shorter message (irecv): %zu bytes", static_cast<std::size_t>(got.bytes));

  // Bad arguments are usage errors naming the rank.
  bool usage = false;
  try {
    c.send(1, n + 5);
  } catch (const ipc::UsageError& e) {
    usage = std::string(e.what()).find(std::to_string(n + 5)) != std::string::npos;
  }
  IT_CHECK(me, usage, "send to a rank outside the job");
  for (int bad : {-2, n, n + 5}) {
    bool probe_usage = false, iprobe_usage = false;
    try {
      c.probe(bad);
    } catch (const ipc::UsageError&) {
      probe_usage = true;
    }
    try {
      c.iprobe(bad);
    } catch (const ipc::UsageError&) {
      iprobe_usage = true;
    }
    IT_CHECK(me, probe_usage && iprobe_usage, "probe for a rank outside the job is a usage error");
  }
  // A sendrecv whose send fails leaves nothing posted into its receive buffer: the
  // same buffer then takes the next message.
  {
    int in = -1;
    bool failed = false;
    try {
      c.sendrecv(1, n + 5, ipc::Tag{40}, in, left, ipc::Tag{41});
    } catch (const ipc::UsageError&) {
      failed = true;
    }
    IT_CHECK(me, failed, "sendrecv to a rank outside the job");
    c.barrier();  // every rank has withdrawn its receive before anyone sends tag 41
    c.send(me, right, ipc::Tag{41});
    int got = c.recv<int>(left, ipc::Tag{41});
    IT_CHECK(me, got == left && in == -1, "a failed sendrecv's receive was withdrawn");
  }
  return 0;
}
