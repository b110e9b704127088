// A rank that ends while the others wait in a collective: their collective fails
// with ipc::PeerLost naming it, instead of hanging (node group and messages alike).
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 3) return 2;
  int me = c.rank();
  c.barrier();
  double sum = c.allreduce(1.0 * me);
  IT_CHECK(me, sum == 3.0, "allreduce before the loss: %g", sum);
  if (me == 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::_Exit(0);  // gone without its part of the next collective
  }
  bool lost = false;
  try {
    c.barrier();
  } catch (const ipc::PeerLost& e) {
    lost = std::string(e.what()).find("rank 2") != std::string::npos || me == 1;
  }
  IT_CHECK(me, lost, "the barrier with a lost rank did not fail naming it");
  std::_Exit(0);  // the others are gone or failing: no final fence
}
