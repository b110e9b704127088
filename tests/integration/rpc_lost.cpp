// Remote procedures with a rank that ends abruptly: a call to it fails with
// ipc::PeerLost instead of hanging, calls between the others still work, and ending
// the Rpc does not hang (it reports the loss and stops its server), and the program
// ends normally.
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() < 3) return 2;
  int gone = c.size() - 1;
  int me = c.rank();
  {
    ipc::Rpc rpc(c);
    rpc.define("twice", [](int x) { return 2 * x; });
    c.barrier();
    if (me == gone) std::_Exit(0);  // gone, without a word
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    bool lost = false;
    try {
      rpc.call<int>(gone, "twice", 1).get();
    } catch (const ipc::PeerLost&) {
      lost = true;
    }
    IT_CHECK(me, lost, "a call to a rank that is gone did not fail");
    int other = (me + 1) % gone;
    IT_CHECK(me, rpc.call<int>(other, "twice", 21).get() == 42, "calls between the others");
  }  // ends without the lost rank
  return 0;
}
