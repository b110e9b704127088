// Messages above the shared-memory eager limit (8 KiB with the single copy) and up to
// IPC_SHM_EAGER_ROOM go through the ring when it has room for all of them, else by
// rendezvous; every byte and the order of each pair's messages hold either way.
//   it_shm_eager_room pingpong [BYTES]  200 messages of BYTES (32 KiB), in turns
//                                (shm_eager_room.sh counts the process_vm_readv calls:
//                                none expected up to IPC_SHM_EAGER_DRAINED)
//   it_shm_eager_room exchange BYTES    100 exchanges both ways at once, each rank's
//                                receive posted before its send (by rendezvous above
//                                IPC_SHM_EAGER_ROOM: one read per message)
//   it_shm_eager_room stream     windows of same-tag messages of 1 byte to 100,000 bytes
//                                (around both limits) sent before, while and after their
//                                receives are posted, both ways at once
#include <ipc/ipc.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"

namespace {
constexpr std::size_t kSizes[] = {1, 8192, 8193, 20000, 32768, 40000, 65536, 65537, 100000, 16384};
std::uint8_t byte_of(int from, int n, std::size_t k) { return static_cast<std::uint8_t>(from * 97 + n * 29 + k * 7 + k / 1021); }
}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank(), peer = 1 - me;
  IT_CHECK(me, c.size() == 2, "run on 2 ranks, not %d", c.size());
  const std::string mode = argc > 1 ? argv[1] : "";
  IT_CHECK(me, mode == "pingpong" || mode == "exchange" || mode == "stream",
           "usage: it_shm_eager_room pingpong|exchange [BYTES] | stream");
  const std::size_t bytes = argc > 2 ? std::stoul(argv[2]) : 32768;

  if (mode == "exchange") {
    std::vector<std::uint8_t> out(bytes), in(bytes);
    for (int n = 0; n < 100; ++n) {
      for (std::size_t k = 0; k < out.size(); ++k) out[k] = byte_of(me, n, k);
      auto r = c.irecv(in, peer, ipc::Tag{2});
      c.send(out, peer, ipc::Tag{2});
      r.wait();
      for (std::size_t k = 0; k < in.size(); ++k) IT_CHECK(me, in[k] == byte_of(peer, n, k), "exchange %d byte %zu", n, k);
    }
  } else if (mode == "pingpong") {
    std::vector<std::uint8_t> out(bytes), in(bytes);
    for (int n = 0; n < 200; ++n) {
      if ((n % 2) == me) {
        for (std::size_t k = 0; k < out.size(); ++k) out[k] = byte_of(me, n, k);
        c.send(out, peer, ipc::Tag{1});
      } else {
        c.recv(in, peer, ipc::Tag{1});
        for (std::size_t k = 0; k < in.size(); ++k)
          IT_CHECK(me, in[k] == byte_of(peer, n, k), "message %d byte %zu", n, k);
      }
    }
  } else {
    constexpr int kWindow = 40, kWindows = 6;
    for (int w = 0; w < kWindows; ++w) {
      std::vector<std::vector<std::uint8_t>> out(kWindow), in(kWindow);
      std::vector<ipc::Request> reqs;
      // Receives posted before the sends (even windows), or after them (odd ones: the
      // messages that went through the ring wait as unexpected ones).
      auto post_receives = [&] {
        for (int i = 0; i < kWindow; ++i) {
          in[i].resize(100000);
          reqs.push_back(c.irecv(in[i], peer, ipc::Tag{5}));
        }
      };
      if (w % 2 == 0) post_receives();
      c.barrier();
      for (int i = 0; i < kWindow; ++i) {
        int n = w * kWindow + i;
        out[i].resize(kSizes[static_cast<std::size_t>(n * 7 + me) % std::size(kSizes)]);
        for (std::size_t k = 0; k < out[i].size(); ++k) out[i][k] = byte_of(me, n, k);
        reqs.push_back(c.isend(out[i], peer, ipc::Tag{5}));
      }
      if (w % 2 == 1) post_receives();
      ipc::wait_all(reqs);
      for (int i = 0; i < kWindow; ++i) {
        int n = w * kWindow + i;
        std::size_t size = kSizes[static_cast<std::size_t>(n * 7 + peer) % std::size(kSizes)];
        IT_CHECK(me, in[i].size() == size, "window %d message %d: %zu bytes, sent %zu (out of order?)", w, i,
                 in[i].size(), size);
        for (std::size_t k = 0; k < size; ++k)
          IT_CHECK(me, in[i][k] == byte_of(peer, n, k), "window %d message %d byte %zu", w, i, k);
      }
    }
  }
  c.barrier();
  return 0;
}
