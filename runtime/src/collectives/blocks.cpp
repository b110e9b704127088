// The collectives of blocks of varying sizes, and the prefix reductions:
//  - scatter, gatherv, scatterv: the root posts every send (or receive) at once, the
//    others one receive (or send): one round in which every rank runs once;
//  - allgatherv: a ring of p-1 steps (every rank sends and receives every block but
//    its own once), or all blocks to all ranks at once on an oversubscribed node;
//  - alltoallv: pairwise exchange (step k: to the rank k ahead, from the rank k
//    behind), all pairs at once on an oversubscribed node or for small totals;
//  - reduce_scatter: the ring reduce-scatter of the large allreduce, shifted so that
//    rank r ends with block r: each rank sends and receives (p-1)/p of the data;
//  - scan, exscan: recursive doubling, log2 p exchanges of the partial reduction;
//  - the reduction of serialized values (a user's callable on any type): a binomial
//    tree towards the root, values travelling as bytes of varying size.
// Counts and displacements arrive in bytes (the typed layer converts).
#include <cstring>
#include <vector>

#include "base/copy.hpp"
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"

namespace ipc::detail {
namespace {

constexpr std::size_t kSmallTotal = 64 * 1024;

void copy_bytes(void* to, const void* from, std::size_t bytes) {
  base::move_bytes(to, from, bytes);
}

}  // namespace

void coll_scatter(const CollContext& c, const void* in, std::size_t bytes, void* out, int root) {
  guarded(c, "scatter", [&] {
    if (c.size > 1)
      if (auto* g = node_group(c); g && g->scatters(bytes * static_cast<std::size_t>(c.size)) &&
                                   !scatter_over_messages(c, bytes))
        return g->scatter(in, bytes, out, root);  // one write, each reads its block
    if (c.rank != root) return coll_recv(c, out, bytes, root, kScatter);
    auto* i = static_cast<const std::byte*>(in);
    std::vector<Move> sends;
    for (int q = 0; q < c.size; ++q)
      if (q != root) sends.push_back({q, i + q * bytes, bytes});
    copy_bytes(out, i + root * bytes, bytes);
    coll_post_all(c, nullptr, 0, sends.data(), static_cast<int>(sends.size()), kScatter);
  });
}

void coll_gatherv(const CollContext& c, const void* in, std::size_t bytes, void* out, const std::size_t* counts,
                  const std::size_t* displs, int root) {
  guarded(c, "gatherv", [&] {
    if (c.rank != root) return coll_send(c, in, bytes, root, kGatherv);
    auto* o = static_cast<std::byte*>(out);
    std::vector<Take> recvs;
    for (int q = 0; q < c.size; ++q)
      if (q != root) recvs.push_back({q, o + displs[q], counts[q]});
    copy_bytes(o + displs[root], in, bytes);
    coll_post_all(c, recvs.data(), static_cast<int>(recvs.size()), nullptr, 0, kGatherv);
  });
}

void coll_scatterv(const CollContext& c, const void* in, const std::size_t* counts, const std::size_t* displs,
                   void* out, std::size_t bytes, int root) {
  guarded(c, "scatterv", [&] {
    if (c.rank != root) return coll_recv(c, out, bytes, root, kScatterv);
    auto* i = static_cast<const std::byte*>(in);
    std::vector<Move> sends;
    for (int q = 0; q < c.size; ++q)
      if (q != root) sends.push_back({q, i + displs[q], counts[q]});
    copy_bytes(out, i + displs[root], counts[root]);
    coll_post_all(c, nullptr, 0, sends.data(), static_cast<int>(sends.size()), kScatterv);
  });
}

void coll_allgatherv(const CollContext& c, const void* in, std::size_t bytes, void* out, const std::size_t* counts,
                     const std::size_t* displs) {
  guarded(c, "allgatherv", [&] {
    int p = c.size, r = c.rank;
    auto* o = static_cast<std::byte*>(out);
    copy_bytes(o + displs[r], in, bytes);
    if (p == 1) return;
    std::size_t total = 0;
    for (int q = 0; q < p; ++q) total += counts[q];
    if (flat(c) && total <= kSmallTotal) {
      std::vector<Take> recvs;
      std::vector<Move> sends;
      for (int q = 0; q < p; ++q)
        if (q != r) {
          recvs.push_back({q, o + displs[q], counts[q]});
          sends.push_back({q, o + displs[r], bytes});
        }
      coll_post_all(c, recvs.data(), p - 1, sends.data(), p - 1, kAllgatherv);
      return;
    }
    int right = (r + 1) % p, left = (r - 1 + p) % p;
    for (int s = 0; s < p - 1; ++s) {
      int send_b = (r - s + p) % p, recv_b = (r - s - 1 + 2 * p) % p;
      coll_sendrecv(c, o + displs[send_b], counts[send_b], right, o + displs[recv_b], counts[recv_b], left,
                    kAllgatherv);
    }
  });
}

void coll_alltoallv(const CollContext& c, const void* in, const std::size_t* send_counts,
                    const std::size_t* send_displs, void* out, const std::size_t* recv_counts,
                    const std::size_t* recv_displs) {
  guarded(c, "alltoallv", [&] {
    int p = c.size, r = c.rank;
    auto* i = static_cast<const std::byte*>(in);
    auto* o = static_cast<std::byte*>(out);
    if (send_counts[r] != recv_counts[r])
      throw UsageError("alltoallv: rank " + std::to_string(r) + " sends itself " + std::to_string(send_counts[r]) +
                       " bytes but expects " + std::to_string(recv_counts[r]));
    copy_bytes(o + recv_displs[r], i + send_displs[r], send_counts[r]);
    if (p == 1) return;
    std::size_t total = 0;
    for (int q = 0; q < p; ++q) total += send_counts[q];
    if (flat(c) || total <= kSmallTotal) {
      std::vector<Take> recvs;
      std::vector<Move> sends;
      for (int k = 1; k < p; ++k) {
        int q = (r + k) % p;
        recvs.push_back({q, o + recv_displs[q], recv_counts[q]});
        sends.push_back({q, i + send_displs[q], send_counts[q]});
      }
      coll_post_all(c, recvs.data(), p - 1, sends.data(), p - 1, kAlltoallv);
      return;
    }
    for (int k = 1; k < p; ++k) {
      int dst = (r + k) % p, src = (r - k + p) % p;
      coll_sendrecv(c, i + send_displs[dst], send_counts[dst], dst, o + recv_displs[src], recv_counts[src], src,
                    kAlltoallv);
    }
  });
}

void coll_reduce_scatter(const CollContext& c, void* data, const std::size_t* counts, Reduction op, void* out) {
  guarded(c, "reduce_scatter", [&] {
    int p = c.size, r = c.rank;
    std::size_t es = op.elem_size;
    auto* d = static_cast<std::byte*>(data);
    std::vector<std::size_t> first(static_cast<std::size_t>(p) + 1, 0);
    std::size_t largest = 0;
    for (int q = 0; q < p; ++q) {
      first[q + 1] = first[q] + counts[q];
      largest = std::max(largest, counts[q]);
    }
    // In a node group (a reduce-scatter in shared memory already) or when small (log2 p
    // steps instead of p-1), an allreduce of it all, of which each rank keeps its block.
    auto* g = p > 1 ? node_group(c) : nullptr;
    if (p > 1 && ((g && g->fits(es)) || first[p] * es <= 16 * 1024)) {
      coll_allreduce(c, d, first[p], op);
      copy_bytes(out, d + first[r] * es, counts[r] * es);
      return;
    }
    if (p > 1) {
      std::vector<std::byte> tmp(largest * es);
      int right = (r + 1) % p, left = (r - 1 + p) % p;
      // Step s: block r-s-1 (reduced over s+1 ranks) goes right; block r-s-2 comes
      // from the left and takes this rank's share. After p-1 steps block r is whole.
      for (int s = 0; s < p - 1; ++s) {
        int send_b = ((r - s - 1) % p + p) % p, recv_b = ((r - s - 2) % p + p) % p;
        coll_sendrecv(c, d + first[send_b] * es, counts[send_b] * es, right, tmp.data(), counts[recv_b] * es, left,
                      kReduceScatter);
        op.apply(d + first[recv_b] * es, tmp.data(), counts[recv_b]);
      }
    }
    copy_bytes(out, d + first[r] * es, counts[r] * es);
  });
}

void coll_scan(const CollContext& c, const void* in, void* out, std::size_t count, Reduction op, bool exclusive) {
  guarded(c, exclusive ? "exscan" : "scan", [&] {
    int p = c.size, r = c.rank;
    std::size_t bytes = count * op.elem_size;
    // partial: the reduction of the ranks of this rank's aligned group so far;
    // result: of the ranks below (exclusive) or up to this one (inclusive).
    std::vector<std::byte> partial(bytes), tmp(bytes);
    copy_bytes(partial.data(), in, bytes);
    if (!exclusive) copy_bytes(out, in, bytes);
    bool have = !exclusive;
    for (int mask = 1; mask < p; mask <<= 1) {
      int partner = r ^ mask;
      if (partner >= p) continue;
      coll_sendrecv(c, partial.data(), bytes, partner, tmp.data(), bytes, partner, kScan);
      if (partner < r) {  // theirs comes first in rank order
        if (have) {
          std::vector<std::byte> t(tmp);
          op.apply(t.data(), out, count);
          copy_bytes(out, t.data(), bytes);
        } else {
          copy_bytes(out, tmp.data(), bytes);
          have = true;
        }
        op.apply(tmp.data(), partial.data(), count);
        copy_bytes(partial.data(), tmp.data(), bytes);
      } else {
        op.apply(partial.data(), tmp.data(), count);
      }
    }
  });
}

void coll_reduce_serialized(const CollContext& c, std::vector<std::byte>& value, SerialCombine combine, void* state,
                            int root) {
  guarded(c, "reduce", [&] {
    int p = c.size, vr = (c.rank - root + p) % p;
    for (int mask = 1; mask < p; mask <<= 1) {
      if (vr & mask) {
        coll_send(c, value.data(), value.size(), (vr - mask + root) % p, kSerialReduce);
        return;
      }
      if (vr + mask < p) {
        std::vector<std::byte> theirs = coll_recv_any(c, (vr + mask + root) % p, kSerialReduce);
        combine(state, value, theirs);
      }
    }
  });
}

}  // namespace ipc::detail
