// Non-overtaking: 10,000 messages from every other rank to rank 0 on one tag, of mixed
// sizes so that eager and rendezvous messages interleave, received in order; half of
// them go to receives posted before the messages arrive, half arrive unexpected.
#include <ipc/ipc.hpp>

#include <cstdint>
#include <vector>

#include "check.hpp"

namespace {
std::size_t size_of(int i) { return i % 97 == 0 ? 200000 : (i % 13 == 0 ? 70000 : static_cast<std::size_t>(i % 50) * 8); }
}  // namespace

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  const int count = 10000;
  if (me == 0) {
    for (int src = 1; src < n; ++src) {
      int i = 0;
      while (i < count) {
        // A window of receives posted ahead, then blocking ones.
        std::vector<std::vector<std::uint32_t>> bufs(64);
        std::vector<ipc::Request> reqs;
        int first = i;
        for (int k = 0; k < 64 && i < count; ++k, ++i) reqs.push_back(c.irecv(bufs[k], src, ipc::Tag{3}));
        ipc::wait_all(reqs);
        for (int k = 0; k < static_cast<int>(reqs.size()); ++k) {
          int idx = first + k;
          auto& b = bufs[k];
          IT_CHECK(me, b.size() * 4 == (size_of(idx) / 4) * 4, "message %d from %d: %zu words", idx, src, b.size());
          if (!b.empty()) IT_CHECK(me, b[0] == static_cast<std::uint32_t>(idx), "message %d from %d came as %u", idx, src, b[0]);
        }
        for (int k = 0; k < 64 && i < count; ++k, ++i) {
          std::vector<std::uint32_t> b;
          c.recv(b, src, ipc::Tag{3});
          if (!b.empty()) IT_CHECK(me, b[0] == static_cast<std::uint32_t>(i), "message %d from %d came as %u", i, src, b[0]);
        }
      }
    }
  } else {
    for (int i = 0; i < count; ++i) {
      std::vector<std::uint32_t> b(size_of(i) / 4, static_cast<std::uint32_t>(i));
      c.send(b, 0, ipc::Tag{3});
    }
  }
  return 0;
}
