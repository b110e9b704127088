// any_source fan-in: every rank sends rank 0 many messages; rank 0 takes them with
// any_source (and any_tag), and checks that each sender's messages come in order.
#include <ipc/ipc.hpp>

#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  const int per = 500;
  if (me == 0) {
    std::vector<int> next(n, 0);
    for (int i = 0; i < per * (n - 1); ++i) {
      int v = -1;
      auto st = c.recv(v, ipc::any_source, ipc::any_tag);
      IT_CHECK(me, st.source > 0 && st.source < n, "source %d", st.source);
      IT_CHECK(me, st.tag == ipc::Tag{st.source}, "tag %d from %d", st.tag.value, st.source);
      IT_CHECK(me, v == next[st.source], "from %d: got %d, expected %d", st.source, v, next[st.source]);
      ++next[st.source];
    }
    for (int p = 1; p < n; ++p) IT_CHECK(me, next[p] == per, "from %d: %d messages", p, next[p]);
  } else {
    for (int i = 0; i < per; ++i) c.send(i, 0, ipc::Tag{me});
  }
  return 0;
}
