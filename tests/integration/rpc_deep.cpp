// Calls nested back and forth between two ranks (each handler calls the other rank,
// which calls back...): deep chains complete, and a chain deeper than the server's
// limit gets a RemoteError naming it instead of killing the serving rank.
#include <ipc/ipc.hpp>

#include <cstdio>
#include <string>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  int me = c.rank(), other = 1 - me;
  {
    ipc::Rpc rpc(c);
    rpc.define("down", [&rpc, other](long k) -> long { return k == 0 ? 0 : rpc.call<long>(other, "down", k - 1).get() + 1; });
    c.barrier();
    if (me == 0) {
      IT_CHECK(me, rpc.call<long>(other, "down", 600L).get() == 600, "600 nested calls (300 on each server)");
      bool refused = false;
      try {
        rpc.call<long>(other, "down", 5000L).get();
      } catch (const ipc::RemoteError& e) {
        refused = std::string(e.what()).find("nested more than 400 deep") != std::string::npos;
        if (!refused) std::fprintf(stderr, "rank 0: unexpected error: %s\n", e.what());
      }
      IT_CHECK(me, refused, "5000 nested calls are refused with a RemoteError");
      IT_CHECK(me, rpc.call<long>(other, "down", 10L).get() == 10, "the servers still serve");
    }
    c.barrier();
  }
  return 0;
}
