// Sends a known text between every pair of ranks (rank r to rank r+1 and back), so
// that a capture of the network can tell whether it travels in the clear (the TLS
// test across hosts, tests/cluster/multihost.sh).
//   marker TEXT [rounds]
#include <ipc/ipc.hpp>

#include <cstdlib>
#include <string>

#include "check.hpp"

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  if (argc < 2 || n < 2) return 2;
  std::string text;
  while (text.size() < 4096) text += argv[1];
  int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
  int right = (me + 1) % n, left = (me + n - 1) % n;
  for (int i = 0; i < rounds; ++i) {
    std::string got;
    auto r = c.irecv(got, left, ipc::Tag{1});
    c.send(text, right, ipc::Tag{1});
    r.wait();
    IT_CHECK(me, got == text, "round %d: the text from rank %d arrived changed", i, left);
  }
  c.barrier();
  return 0;
}
