// The cause is reported, not its echo: rank 2 exits 3 while the others block in a
// receive from it over TCP, where they learn of the loss at once (ipc::PeerLost,
// uncaught). ipcrun must still exit 3 and name rank 2.
#include <ipc/ipc.hpp>

#include <cstdlib>

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  // Everyone is connected to rank 2 before it goes.
  if (c.rank() == 2) {
    for (int p = 0; p < c.size(); ++p)
      if (p != 2) c.recv<int>(p, ipc::Tag{1});
    std::_Exit(3);
  }
  c.send(1, 2, ipc::Tag{1});
  c.recv<int>(2, ipc::Tag{2});  // never sent: fails with PeerLost when rank 2 goes
  return 0;
}
