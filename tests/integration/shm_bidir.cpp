// Both ranks of each pair send each other many large and small messages at once,
// with non-blocking sends posted before any receive: no deadlock, nothing lost.
#include <ipc/ipc.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  int peer = me ^ 1;
  if (peer >= n) return 0;
  std::vector<std::vector<std::uint64_t>> out, in(40);
  for (int i = 0; i < 40; ++i) {
    std::size_t words = i % 4 == 0 ? (3u << 20) / 8 : static_cast<std::size_t>(i) * 1000;
    out.emplace_back(words);
    std::iota(out.back().begin(), out.back().end(), static_cast<std::uint64_t>(me) * 1000000 + i);
  }
  std::vector<ipc::Request> sends;
  for (int i = 0; i < 40; ++i) sends.push_back(c.isend(out[i], peer, ipc::Tag{i % 3}));
  for (int i = 0; i < 40; ++i) c.recv(in[i], peer, ipc::Tag{i % 3});
  ipc::wait_all(sends);
  for (int i = 0; i < 40; ++i) {
    IT_CHECK(me, in[i].size() == out[i].size(), "message %d: %zu words", i, in[i].size());
    for (std::size_t k = 0; k < in[i].size(); k += 997)
      IT_CHECK(me, in[i][k] == static_cast<std::uint64_t>(peer) * 1000000 + i + k, "message %d word %zu", i, k);
  }
  return 0;
}
