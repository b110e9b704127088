// Allgather (recursive doubling for small totals on a power-of-two number of ranks,
// else a ring), gather (to the root directly) and all-to-all (pairwise exchange: in
// step k every rank sends to the rank k ahead and receives from the rank k behind).
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/copy.hpp"
#include "collectives/hierarchy.hpp"
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"
#include "core/engine.hpp"

namespace ipc::detail {

void coll_allgather(const CollContext& c, const void* in, std::size_t bytes, void* out) {
  guarded(c, "allgather", [&] {
    int p = c.size, r = c.rank;
    auto* o = static_cast<std::byte*>(out);
    if (p > 1) {
      if (auto* g = node_group(c)) return g->allgather(in, bytes, out);
      if (auto* h = hierarchy(c)) return hier_allgather(c, *h, in, bytes, out);
    }
    base::move_bytes(o + r * bytes, in, bytes);
    if (p == 1) return;
    AllgatherAlg alg = allgather_algorithm(c, bytes);
    if (alg == AllgatherAlg::all) {  // every block to every rank at once
      std::vector<Transfer> xs;
      for (int q = 0; q < p; ++q)
        if (q != r) xs.push_back({q, o + r * bytes, o + q * bytes, bytes});
      coll_exchange_all(c, xs.data(), static_cast<int>(xs.size()), kAllgatherAll);
      return;
    }
    if (alg == AllgatherAlg::doubling) {
      // After round k a rank holds the 2^(k+1) blocks of its aligned group.
      for (int mask = 1; mask < p; mask <<= 1) {
        int partner = r ^ mask;
        int mine = r & ~(mask - 1), theirs = partner & ~(mask - 1);
        coll_sendrecv(c, o + mine * bytes, mask * bytes, partner, o + theirs * bytes, mask * bytes, partner,
                      kAllgather);
      }
      return;
    }
    if (alg == AllgatherAlg::bruck) {
      // Bruck: ceil(log2 p) rounds on any number of ranks. tmp holds blocks r, r+1, ...
      // (mod p); in round k a rank sends its first min(2^k, p - 2^k) blocks to the rank
      // 2^k behind and appends as many from the rank 2^k ahead.
      std::vector<std::byte> tmp(static_cast<std::size_t>(p) * bytes);
      base::copy_bytes(tmp.data(), o + r * bytes, bytes);
      for (int have = 1; have < p; have <<= 1) {
        int n = std::min(have, p - have);
        coll_sendrecv(c, tmp.data(), n * bytes, (r - have + p) % p, tmp.data() + have * bytes, n * bytes,
                      (r + have) % p, kAllgatherBruck);
      }
      for (int i = 1; i < p; ++i)
        base::copy_bytes(o + ((r + i) % p) * bytes, tmp.data() + i * bytes, bytes);
      return;
    }
    int right = (r + 1) % p, left = (r - 1 + p) % p;
    for (int s = 0; s < p - 1; ++s) {
      int send_b = (r - s + p) % p, recv_b = (r - s - 1 + 2 * p) % p;
      coll_sendrecv(c, o + send_b * bytes, bytes, right, o + recv_b * bytes, bytes, left, kAllgather);
    }
  });
}

void coll_gather(const CollContext& c, const void* in, std::size_t bytes, void* out, int root) {
  guarded(c, "gather", [&] {
    if (c.size > 1)
      if (auto* g = node_group(c)) return g->gather(in, bytes, out, root);
    if (c.rank != root) {
      coll_send(c, in, bytes, root, kGather);
      return;
    }
    auto* o = static_cast<std::byte*>(out);
    base::move_bytes(o + root * bytes, in, bytes);
    std::vector<Take> recvs;  // all posted at once: they land in any order
    for (int q = 0; q < c.size; ++q)
      if (q != root) recvs.push_back({q, o + q * bytes, bytes});
    coll_post_all(c, recvs.data(), static_cast<int>(recvs.size()), nullptr, 0, kGather);
  });
}

void coll_alltoall(const CollContext& c, const void* in, std::size_t bytes, void* out) {
  guarded(c, "alltoall", [&] {
    int p = c.size, r = c.rank;
    auto* i = static_cast<const std::byte*>(in);
    auto* o = static_cast<std::byte*>(out);
    if (p > 1)
      if (auto* g = node_group(c); g && !pair_over_messages(c, bytes)) return g->alltoall(in, bytes, out);
    base::move_bytes(o + r * bytes, i + r * bytes, bytes);
    AlltoallAlg alg = alltoall_algorithm(c, bytes);
    if (alg == AlltoallAlg::bruck) {
      // Bruck: ceil(log2 p) rounds. Rotated so that block j is for rank r + j; in the
      // round of bit k, the blocks whose index has bit k go to rank r + k (and as many
      // come from rank r - k into the same places); then block j came from rank r - j.
      std::size_t n = static_cast<std::size_t>(p);
      std::vector<std::byte> tmp(n * bytes), pack, unpack;
      for (std::size_t j = 0; j < n; ++j)
        base::copy_bytes(tmp.data() + j * bytes, i + ((r + j) % n) * bytes, bytes);
      for (std::size_t k = 1; k < n; k <<= 1) {
        pack.clear();
        for (std::size_t j = 0; j < n; ++j)
          if (j & k) pack.insert(pack.end(), tmp.begin() + j * bytes, tmp.begin() + (j + 1) * bytes);
        unpack.resize(pack.size());
        coll_sendrecv(c, pack.data(), pack.size(), static_cast<int>((r + k) % n), unpack.data(), unpack.size(),
                      static_cast<int>((r - k + n) % n), kAlltoallBruck);
        std::size_t at = 0;
        for (std::size_t j = 0; j < n; ++j)
          if (j & k) {
            base::copy_bytes(tmp.data() + j * bytes, unpack.data() + at, bytes);
            at += bytes;
          }
      }
      for (std::size_t j = 0; j < n; ++j)
        base::copy_bytes(o + ((r - j + n) % n) * bytes, tmp.data() + j * bytes, bytes);
      return;
    }
    if (alg == AlltoallAlg::all) {  // all pairs at once
      std::vector<Transfer> xs;
      for (int k = 1; k < p; ++k) {
        int q = (r + k) % p;
        xs.push_back({q, i + q * bytes, o + q * bytes, bytes});
      }
      coll_exchange_all(c, xs.data(), static_cast<int>(xs.size()), kAlltoallAll);
      return;
    }
    for (int k = 1; k < p; ++k) {
      int dst = (r + k) % p, src = (r - k + p) % p;
      coll_sendrecv(c, i + dst * bytes, bytes, dst, o + src * bytes, bytes, src, kAlltoall);
    }
  });
}

}  // namespace ipc::detail
