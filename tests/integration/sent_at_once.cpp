// A small non-blocking send that leaves at once (into a shared-memory ring with room)
// completes as it starts: its handle carries the status and no request. Such handles
// must behave as any other: wait(), test(), done(), copies and moves, and wait_any /
// wait_some / wait_all beside requests that are still pending.
//   argv[1] = "shm": also checks that such sends do complete at once there.
#include <ipc/ipc.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"

int main(int argc, char** argv) {
  const bool shm = argc > 1 && std::strcmp(argv[1], "shm") == 0;
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  const int me = c.rank();
  const int peer = 1 - me;
  if (me == 0) {
    c.send(0, peer, ipc::Tag{1});  // the first message to a peer prepares its ring
    int a = 11, b = 22, d = 33;
    ipc::Request ra = c.isend(a, peer, ipc::Tag{2});
    if (shm) IT_CHECK(0, ra.done(), "a small send into shared memory did not complete at once");
    IT_CHECK(0, ra.valid(), "a sent handle is not valid");
    auto st = ra.test();
    IT_CHECK(0, st && st->source == peer && st->tag == ipc::Tag{2} && st->bytes == sizeof(int), "test() of a sent one");
    ipc::Request copy = ra;
    ipc::Status s1 = ra.wait(), s2 = copy.wait();  // waiting twice, and on a copy
    IT_CHECK(0, s1.source == peer && s2.tag == ipc::Tag{2} && s2.bytes == sizeof(int), "wait() of a sent one");
    ipc::Request moved = std::move(copy);
    IT_CHECK(0, !copy.valid() && moved.valid(), "a moved-from handle stays valid");
    // wait_any / wait_some / wait_all beside a receive that is still pending.
    std::vector<int> back(1, 0);
    std::vector<ipc::Request> rs;
    rs.push_back(c.irecv(std::span<int>(back), peer, ipc::Tag{5}));
    rs.push_back(c.isend(b, peer, ipc::Tag{3}));
    rs.push_back(ipc::Request());
    rs.push_back(c.isend(d, peer, ipc::Tag{4}));
    ipc::Status any;
    std::size_t i = ipc::wait_any(rs, &any);
    IT_CHECK(0, i == 1 || i == 3, "wait_any took %zu, not a send", i);
    IT_CHECK(0, any.source == peer && (any.tag == ipc::Tag{3} || any.tag == ipc::Tag{4}), "wait_any's status");
    IT_CHECK(0, !rs[i].valid(), "wait_any did not reset the handle it took");
    c.send(0, peer, ipc::Tag{6});  // now rank 1 answers on tag 5
    std::vector<ipc::Status> sts;
    std::size_t taken = 0;
    for (std::vector<std::size_t> got; !(got = ipc::wait_some(rs, &sts)).empty();)
      for (std::size_t k : got) {
        ++taken;
        IT_CHECK(0, sts[k].source == peer, "wait_some's status %zu", k);
        IT_CHECK(0, !rs[k].valid(), "wait_some did not reset %zu", k);
      }
    IT_CHECK(0, taken == 2 && back[0] == 55, "wait_some took %zu, got %d", taken, back[0]);
    std::vector<ipc::Request> all;
    for (int k = 0; k < 100; ++k) all.push_back(c.isend(std::vector<int>{k}, peer, ipc::Tag{7}));  // rvalues: owned
    auto statuses = ipc::wait_all(all);
    IT_CHECK(0, statuses.size() == 100 && statuses[99].tag == ipc::Tag{7} && statuses[99].bytes == sizeof(int),
             "wait_all of sent ones");
  } else {
    c.recv<int>(peer, ipc::Tag{1});
    IT_CHECK(1, c.recv<int>(peer, ipc::Tag{2}) == 11, "tag 2");
    c.recv<int>(peer, ipc::Tag{6});
    c.send(55, peer, ipc::Tag{5});
    IT_CHECK(1, c.recv<int>(peer, ipc::Tag{3}) == 22, "tag 3");
    IT_CHECK(1, c.recv<int>(peer, ipc::Tag{4}) == 33, "tag 4");
    for (int k = 0; k < 100; ++k) {
      auto v = c.recv<std::vector<int>>(peer, ipc::Tag{7});
      IT_CHECK(1, v.size() == 1 && v[0] == k, "tag 7, message %d", k);
    }
  }
  c.barrier();
  if (me == 0) std::printf("sent at once: ok\n");
  return 0;
}
