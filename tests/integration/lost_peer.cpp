// A peer that ends in the middle of things: rank 1 announces a large message (and
// sends a small one) and then ends abruptly; rank 0 still gets the small message,
// and its receive of the large one fails with ipc::PeerLost instead of hanging.
// Rank 0 also learns it when blocked in a receive from the peer when it dies, with
// sends to that peer still queued, and then ends normally.
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 3) return 2;
  int me = c.rank();
  if (me == 1) {
    std::vector<char> big(4u << 20, 'b');
    auto r = c.isend(big, 0, ipc::Tag{1});  // announced: the payload waits for rank 0
    c.send(7, 0, ipc::Tag{2});
    c.recv<int>(0, ipc::Tag{3});  // rank 0 has the small one
    std::_Exit(0);                // gone without finishing
  }
  if (me == 2) {
    c.send(1, 0, ipc::Tag{4});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::_Exit(0);  // rank 0 is blocked in a receive from rank 2 now
  }
  IT_CHECK(me, c.recv<int>(1, ipc::Tag{2}) == 7, "small message");
  c.send(1, 1, ipc::Tag{3});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // rank 1 ends meanwhile
  std::vector<char> big;
  bool lost = false;
  try {
    c.recv(big, 1, ipc::Tag{1});
  } catch (const ipc::PeerLost& e) {
    lost = true;
  }
  IT_CHECK(me, lost, "the receive of a lost peer's announced message did not fail");
  IT_CHECK(me, c.recv<int>(2, ipc::Tag{4}) == 1, "rank 2's message");
  // More than rank 2's ring holds, which it never receives: copies stay queued here
  // until its loss drops them.
  std::vector<char> chunk(64 * 1024, 'q');  // 64 MiB in all: more than the sockets hold
  std::vector<ipc::Request> queued;
  for (int i = 0; i < 1000; ++i) queued.push_back(c.isend(chunk, 2, ipc::Tag{6}));
  lost = false;
  try {
    c.recv<int>(2, ipc::Tag{5});  // rank 2 dies while this waits
  } catch (const ipc::PeerLost&) {
    lost = true;
  }
  IT_CHECK(me, lost, "a receive blocked on a dying peer did not fail");
  // Each ends: sent (rank 2's progress thread may have taken them in before it died)
  // or failed with the loss; none is left waiting.
  for (auto& r : queued) {
    try {
      r.wait();
    } catch (const ipc::PeerLost&) {
    }
  }
  // An ordinary end: the runtime flushes what is queued (nothing is, for lost peers)
  // and fences without the ranks that are gone.
  return 0;
}
