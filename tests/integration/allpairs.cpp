// All-pairs exchange: every rank sends every other rank (and itself) messages of
// 0 B to the largest size, all at once with non-blocking calls, checksummed.
//   allpairs [max bytes]
#include <ipc/ipc.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "check.hpp"

namespace {
std::uint8_t pattern(int from, int to, std::size_t size, std::size_t i) {
  return static_cast<std::uint8_t>((from * 31 + to * 17 + size * 7 + i * 13 + (i >> 9)) & 0xff);
}
}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  std::size_t max = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (8u << 20);
  std::vector<std::size_t> sizes{0, 1, 8};
  for (std::size_t s = 64; s <= max; s *= 4) sizes.push_back(s);
  if (sizes.back() != max) sizes.push_back(max);

  for (std::size_t size : sizes) {
    std::vector<std::vector<std::uint8_t>> out(n), in(n);
    std::vector<ipc::Request> reqs;
    for (int p = 0; p < n; ++p) {
      reqs.push_back(c.irecv(in[p], p, ipc::Tag{1}));
      out[p].resize(size);
      for (std::size_t i = 0; i < size; ++i) out[p][i] = pattern(me, p, size, i);
    }
    for (int k = 0; k < n; ++k) {
      int p = (me + k) % n;  // stagger the order so that not everyone hits rank 0 first
      reqs.push_back(c.isend(out[p], p, ipc::Tag{1}));
    }
    auto st = ipc::wait_all(reqs);
    for (int p = 0; p < n; ++p) {
      IT_CHECK(me, st[p].source == p && st[p].bytes == size, "size %zu from %d: status %d/%zu", size, p,
               st[p].source, st[p].bytes);
      IT_CHECK(me, in[p].size() == size, "size %zu from %d: got %zu bytes", size, p, in[p].size());
      for (std::size_t i = 0; i < size; ++i)
        IT_CHECK(me, in[p][i] == pattern(p, me, size, i), "size %zu from %d: byte %zu differs", size, p, i);
    }
  }
  return 0;
}
