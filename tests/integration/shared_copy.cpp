// Large messages over shared memory, copied by both sides at once (IPC_SHM_SHARED_COPY:
// the receiver reads the first part while the sender writes the rest) or taken back
// by the receiver when the sender is busy elsewhere: every word arrives, at sizes that
// are not whole pages, in a ping-pong, in a window, with the sender away from the
// library for a while, and both ways at once.
#include <ipc/ipc.hpp>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

std::vector<std::uint64_t> pattern(std::size_t words, std::uint64_t seed) {
  std::vector<std::uint64_t> v(words);
  for (std::size_t k = 0; k < words; ++k) v[k] = seed * 0x9e3779b97f4a7c15ull + k;
  return v;
}

void expect(int me, const std::vector<std::uint64_t>& got, std::size_t words, std::uint64_t seed, const char* what) {
  IT_CHECK(me, got.size() == words, "%s: %zu words, not %zu", what, got.size(), words);
  for (std::size_t k = 0; k < words; ++k)
    IT_CHECK(me, got[k] == seed * 0x9e3779b97f4a7c15ull + k, "%s: word %zu of %zu", what, k, words);
}

}  // namespace

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank(), peer = me ^ 1;
  if (peer >= c.size()) return 0;
  const std::size_t sizes[] = {(256u << 10) / 8 + 1, (1u << 20) / 8, (3u << 20) / 8 + 3, (5u << 20) / 8 + 1};
  std::uint64_t seed = 1;
  std::vector<std::uint64_t> in;
  // Ping-pong: each side waits in the library for its send, so the parts are shared.
  for (std::size_t words : sizes)
    for (int i = 0; i < 3; ++i, ++seed) {
      if (me < peer) {
        c.send(pattern(words, seed), peer);
        c.recv(in, peer);
        expect(me, in, words, seed + 1000, "ping-pong back");
      } else {
        c.recv(in, peer);
        expect(me, in, words, seed, "ping-pong");
        c.send(pattern(words, seed + 1000), peer);
      }
    }
  // A window from the lower rank of each pair (more messages than offers at once), into
  // separate buffers.
  {
    const std::size_t words = (768u << 10) / 8 + 5;
    const int window = 12;
    if (me < peer) {
      std::vector<std::vector<std::uint64_t>> out;
      for (int w = 0; w < window; ++w) out.push_back(pattern(words, 5000 + w));
      std::vector<ipc::Request> reqs;
      for (int w = 0; w < window; ++w) reqs.push_back(c.isend(out[w], peer));
      ipc::wait_all(reqs);
    } else {
      std::vector<std::vector<std::uint64_t>> got(window);
      std::vector<ipc::Request> reqs;
      for (int w = 0; w < window; ++w) reqs.push_back(c.irecv(got[w], peer));
      ipc::wait_all(reqs);
      for (int w = 0; w < window; ++w) expect(me, got[w], words, 5000 + w, "window");
    }
  }
  // The sender away from the library (computing) while the receiver takes its message.
  for (int i = 0; i < 3; ++i) {
    const std::size_t words = (2u << 20) / 8 + 7;
    if (me < peer) {
      auto out = pattern(words, 7000 + i);
      auto req = c.isend(out, peer);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      req.wait();
    } else {
      c.recv(in, peer);
      expect(me, in, words, 7000 + i, "from a busy sender");
    }
    c.barrier();
  }
  // Both ways at once.
  {
    const std::size_t words = (1536u << 10) / 8 + 9;
    auto out = pattern(words, 9000 + me);
    std::vector<std::uint64_t> got;
    auto s = c.isend(out, peer);
    c.recv(got, peer);
    s.wait();
    expect(me, got, words, 9000 + peer, "both ways");
  }
  return 0;
}
