// Ring exchange: every rank passes a growing token to its right neighbour, many laps,
// with blocking and non-blocking calls.
#include <ipc/ipc.hpp>

#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  int right = (me + 1) % n, left = (me + n - 1) % n;
  for (int lap = 0; lap < 50; ++lap) {
    std::vector<int> token;
    if (me == 0) {
      token = {lap};
      c.send(token, right, ipc::Tag{lap});
      c.recv(token, left, ipc::Tag{lap});
      IT_CHECK(me, static_cast<int>(token.size()) == n, "lap %d: token has %zu entries", lap, token.size());
      for (int i = 1; i < n; ++i) IT_CHECK(me, token[i] == i, "lap %d: entry %d is %d", lap, i, token[i]);
    } else {
      auto st = c.recv(token, left, ipc::Tag{lap});
      IT_CHECK(me, st.source == left && st.tag == ipc::Tag{lap}, "status source %d", st.source);
      IT_CHECK(me, st.bytes == token.size() * sizeof(int), "status bytes %zu", st.bytes);
      token.push_back(me);
      c.isend(std::move(token), right, ipc::Tag{lap}).wait();
    }
  }
  // Everyone at once: send right, receive left (sendrecv never deadlocks).
  for (int round = 0; round < 20; ++round) {
    long got = -1;
    c.sendrecv(static_cast<long>(me * 1000 + round), right, ipc::Tag{7}, got, left, ipc::Tag{7});
    IT_CHECK(me, got == left * 1000 + round, "round %d: got %ld", round, got);
  }
  return 0;
}
