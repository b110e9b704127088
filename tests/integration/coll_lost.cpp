// A rank that ends while the others run a collective: the collective fails with
// ipc::PeerLost naming the lost rank on every survivor whose part needs it, directly
// or through a rank that gave up (a rank whose part was complete, e.g. the root of a
// bcast, keeps its result); the communicator's next collective fails on every
// survivor; messages between the survivors still work; the program ends normally.
//   coll_lost [collective [lost rank]]   (collective: barrier, bcast, allreduce,
//   allreduce_big, reduce, allgather, gather, alltoall; default barrier, last rank)
#include <ipc/ipc.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

void run(const ipc::Communicator& c, const std::string& op) {
  int n = c.size();
  if (op == "barrier") {
    c.barrier();
  } else if (op == "bcast") {
    std::vector<int> v(1000, c.rank());
    c.bcast(v, 0);
  } else if (op == "allreduce") {
    (void)c.allreduce(1.0 * c.rank());
  } else if (op == "allreduce_big") {  // the ring, with announced (rendezvous) steps
    std::vector<double> v(1 << 18, 1.0);
    c.allreduce_inplace(std::span<double>(v));
  } else if (op == "reduce") {
    (void)c.reduce(c.rank(), 0);
  } else if (op == "allgather") {
    (void)c.allgather(c.rank());
  } else if (op == "gather") {
    (void)c.gather(c.rank(), 0);
  } else if (op == "alltoall") {
    std::vector<int> v(static_cast<std::size_t>(n), c.rank());
    (void)c.alltoall(v);
  } else {
    std::fprintf(stderr, "coll_lost: unknown collective '%s'\n", op.c_str());
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  std::string op = argc > 1 ? argv[1] : "barrier";
  int lost = argc > 2 ? std::atoi(argv[2]) : n - 1;
  if (n < 3 || lost < 0 || lost >= n) return 2;

  double sum = c.allreduce(1.0 * me);
  IT_CHECK(me, sum == n * (n - 1) / 2.0, "allreduce before the loss: %g", sum);
  // The lost rank leaves once every other has finished the collective above (so that
  // none of them still needs a message from it), without its part of the next one.
  if (me == lost) {
    for (int q = 0; q < n; ++q)
      if (q != me) (void)c.recv<int>(q, ipc::Tag{7});
    std::_Exit(0);
  }
  c.send(1, lost, ipc::Tag{7});

  auto expect_lost = [&](const std::string& what, bool may_complete) {
    try {
      run(c, what);
    } catch (const ipc::PeerLost& e) {
      std::string m = e.what();
      IT_CHECK(me, e.peer() == lost, "%s: PeerLost names rank %d, not %d: %s", what.c_str(), e.peer(), lost,
               m.c_str());
      IT_CHECK(me, m.find("rank " + std::to_string(lost)) != std::string::npos, "%s: %s", what.c_str(), m.c_str());
      IT_CHECK(me, m.find("rank " + std::to_string(me) + " on ") == 0, "%s: not this rank first: %s", what.c_str(),
               m.c_str());
      return;
    }
    IT_CHECK(me, may_complete, "%s with rank %d lost did not fail", what.c_str(), lost);
  };
  // Ranks that wait for the lost one in every one of these: all, in the symmetric ones.
  bool symmetric = op != "bcast" && op != "reduce" && op != "gather";
  expect_lost(op, !symmetric);
  expect_lost("allreduce", false);  // the communicator's collectives stay abandoned
  expect_lost("barrier", false);

  // Messages between the survivors are not affected: a ring over them.
  std::vector<int> alive;
  for (int q = 0; q < n; ++q)
    if (q != lost) alive.push_back(q);
  std::size_t at = 0;
  while (alive[at] != me) ++at;
  int right = alive[(at + 1) % alive.size()], left = alive[(at + alive.size() - 1) % alive.size()];
  int got = -1;
  auto r = c.irecv(got, left, ipc::Tag{8});
  c.send(me, right, ipc::Tag{8});
  r.wait();
  IT_CHECK(me, got == left, "ring among the survivors: %d from %d", got, left);
  return 0;  // ends normally: the job's last fence leaves the lost rank out
}
