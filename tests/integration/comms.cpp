// Communicators: split (odd/even, nested, then the world's again), dup, subset and
// split_by_node. Ranks, sizes and statuses are the communicator's; messages and
// collectives of one never match another's; remote procedures and the farm work on
// any of them.
#include <ipc/ipc.hpp>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

// A ring on `c`: every rank sends its world rank to the next and checks what the
// previous sent, and the status names the sender by its rank in `c`.
void ring(const ipc::Communicator& c, const std::vector<int>& world_of, int world_me, int tag) {
  int n = c.size(), me = c.rank();
  int right = (me + 1) % n, left = (me + n - 1) % n;
  int got = -1;
  auto r = c.irecv(got, ipc::any_source, ipc::Tag{tag});
  c.send(world_me, right, ipc::Tag{tag});
  ipc::Status st = r.wait();
  IT_CHECK(world_me, st.source == left, "ring on a communicator of %d: status names rank %d, expected %d", n, st.source,
           left);
  IT_CHECK(world_me, got == world_of[static_cast<std::size_t>(left)], "ring: got %d from rank %d (world %d)", got, left,
           world_of[static_cast<std::size_t>(left)]);
}

// The world ranks of `c`'s ranks, in its order.
std::vector<int> members(const ipc::Communicator& c, int world_me) { return c.allgather(world_me); }

}  // namespace

int main() {
  ipc::Runtime rt;
  auto& w = rt.world();
  int me = w.rank(), n = w.size();

  // Odd and even ranks.
  auto half = w.split(me % 2, -me);  // key: reverse order
  auto hw = members(half, me);
  int expect_size = (n + 1 - me % 2) / 2;
  IT_CHECK(me, half.size() == expect_size, "split: size %d, expected %d", half.size(), expect_size);
  for (std::size_t i = 0; i + 1 < hw.size(); ++i)
    IT_CHECK(me, hw[i] > hw[i + 1] && hw[i] % 2 == me % 2, "split: members out of key order");
  IT_CHECK(me, hw[static_cast<std::size_t>(half.rank())] == me, "split: this rank's place");
  int sum = half.allreduce(me);
  int want = 0;
  for (int r = me % 2; r < n; r += 2) want += r;
  IT_CHECK(me, sum == want, "allreduce on a half: %d, expected %d", sum, want);
  int root_value = me;
  half.bcast(root_value, half.size() - 1);
  IT_CHECK(me, root_value == hw.back(), "bcast on a half from its last rank");
  half.barrier();
  ring(half, hw, me, 3);

  // Isolation: the same tag at once on the world and on the half; an any-source,
  // any-tag receive on the world gets the world's message only.
  {
    int wr = (me + 1) % n, hr = (half.rank() + 1) % half.size();
    std::string on_half = "half", on_world = "world", got;
    auto s1 = half.isend(on_half, hr, ipc::Tag{5});
    auto s2 = w.isend(on_world, wr, ipc::Tag{5});
    w.recv(got, ipc::any_source, ipc::any_tag);
    IT_CHECK(me, got == "world", "world receive matched the half's message: '%s'", got.c_str());
    half.recv(got, ipc::any_source, ipc::any_tag);
    IT_CHECK(me, got == "half", "half receive got '%s'", got.c_str());
    s1.wait();
    s2.wait();
  }

  // dup: the same ranks, apart.
  auto twin = w.dup();
  IT_CHECK(me, twin.rank() == me && twin.size() == n, "dup: rank %d size %d", twin.rank(), twin.size());
  {
    int a = 0, b = 0;
    auto r = twin.irecv(a, (me + n - 1) % n, ipc::Tag{1});
    w.send(100 + me, (me + 1) % n, ipc::Tag{1});
    twin.send(200 + me, (me + 1) % n, ipc::Tag{1});
    w.recv(b, (me + n - 1) % n, ipc::Tag{1});
    r.wait();
    IT_CHECK(me, a == 200 + (me + n - 1) % n && b == 100 + (me + n - 1) % n, "dup mixed with the world: %d %d", a, b);
  }
  IT_CHECK(me, twin.allreduce(1) == n, "allreduce on a dup");

  // Nested: the half split again, then the world split: numbers still agree.
  auto quarter = half.split(half.rank() % 2);
  auto qw = members(quarter, me);
  ring(quarter, qw, me, 4);
  auto again = w.split(me < n / 2 ? 0 : 1);
  auto aw = members(again, me);
  ring(again, aw, me, 6);
  IT_CHECK(me, again.allreduce(1) == again.size(), "allreduce after nested splits");

  // subset: the ends of the world, listed last first.
  std::vector<int> ends = n > 1 ? std::vector<int>{n - 1, 0} : std::vector<int>{0};
  auto sub = w.subset(ends);
  bool in = me == 0 || me == n - 1;
  IT_CHECK(me, sub.has_value() == in, "subset: membership");
  if (sub) {
    IT_CHECK(me, sub->size() == static_cast<int>(ends.size()) && sub->rank() == (me == n - 1 ? 0 : 1),
             "subset: rank %d of %d", sub->rank(), sub->size());
    if (sub->size() > 1) ring(*sub, members(*sub, me), me, 7);
  }

  // split_by_node: on one host, every rank; across hosts, this host's.
  auto node = w.split_by_node();
  auto hashes = w.allgather(std::hash<std::string>{}(rt.node()));
  std::vector<int> here;
  for (int r = 0; r < n; ++r)
    if (hashes[static_cast<std::size_t>(r)] == hashes[static_cast<std::size_t>(me)]) here.push_back(r);
  IT_CHECK(me, members(node, me) == here, "split_by_node: %d ranks, expected the %zu of node %s", node.size(),
           here.size(), rt.node().c_str());
  // A node's communicator runs its collectives through a shared segment of its own
  // (mapped, its name already removed), unless told not to (IPC_SHM_COLL=0) or the
  // node's ranks talk over tcp.
  const char* coll = std::getenv("IPC_SHM_COLL");
  const char* transports = std::getenv("IPC_TRANSPORTS");
  const char* limit = std::getenv("IPC_COMM_GROUPS");
  bool expect_group = node.size() > 1 && !(coll && std::string(coll) == "0") && !(limit && std::string(limit) == "0") &&
                      !(transports && std::string(transports).find("shm") == std::string::npos);
  // Named /ipc-<job>-c<context>-<rank>: a context with bit 26 is the node step of a
  // communicator that spans nodes (its node-aware collectives), which the world is
  // when this job spans hosts.
  std::ifstream maps("/proc/self/maps");
  std::string job = rt.job(), line, mark = "/ipc-" + job + "-c";
  int segments = 0, node_steps = 0;
  while (std::getline(maps, line)) {
    auto at = line.find(mark);
    if (at == std::string::npos || line.find("-c (deleted)") != std::string::npos) continue;
    ++segments;
    if (std::strtoul(line.c_str() + at + mark.size(), nullptr, 10) & (1ul << 26)) ++node_steps;
  }
  IT_CHECK(me, (segments > 0) == expect_group, "communicators' node-group segments mapped: %d (expected %s)", segments,
           expect_group ? "some" : "none");
  const char* hier = std::getenv("IPC_COLL_HIER");
  bool spans = static_cast<int>(here.size()) < n, hier_on = !(hier && std::string(hier) == "0");
  IT_CHECK(me, (node_steps > 0) == (expect_group && spans && hier_on),
           "node-group segments of node-aware collectives: %d (spans nodes: %d)", node_steps, spans);
  long node_sum = node.allreduce(1L);
  IT_CHECK(me, node_sum == node.size(), "allreduce on the node's communicator: %ld", node_sum);

  // Remote procedures and the farm on the half.
  {
    ipc::Rpc rpc(half);
    rpc.define("who", [&] { return me; });
    half.barrier();
    int target = (half.rank() + 1) % half.size();
    int who = rpc.call<int>(target, "who").get();
    IT_CHECK(me, who == hw[static_cast<std::size_t>(target)], "rpc on a half: rank %d answered as %d", target, who);
  }
  {
    std::vector<int> tasks(20);
    std::iota(tasks.begin(), tasks.end(), 0);
    auto out = ipc::farm<int>(half, tasks, [](int t) { return t * t; });
    if (half.rank() == 0) {
      IT_CHECK(me, out.size() == tasks.size(), "farm on a half: %zu results", out.size());
      for (std::size_t i = 0; i < out.size(); ++i) IT_CHECK(me, out[i] == static_cast<int>(i * i), "farm result %zu", i);
    }
  }

  // Misuse.
  try {
    half.send(1, half.size());
    IT_CHECK(me, false, "a send beyond the half's ranks did not fail");
  } catch (const ipc::UsageError& e) {
    IT_CHECK(me, std::string(e.what()).find("the communicator has ranks 0 to") != std::string::npos, "%s", e.what());
  }
  try {
    (void)w.split(-1);
    IT_CHECK(me, false, "a negative color did not fail");
  } catch (const ipc::UsageError&) {
  }
  w.barrier();
  return 0;
}
