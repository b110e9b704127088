// Allreduce, two algorithms (the choice is at the bottom):
//  - recursive doubling for small vectors: log2 p exchanges of the whole vector (ranks
//    beyond the largest power of two first fold into a partner and get the result back
//    at the end);
//  - ring reduce-scatter then ring allgather for large ones: each rank sends and
//    receives 2(p-1)/p of the vector, the least possible.
// Both give every rank bitwise the same result: in recursive doubling partners apply
// the (commutative) operation to the same two operands; in the ring each block is
// reduced by one rank and then copied to all.
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/copy.hpp"
#include "collectives/hierarchy.hpp"
#include "collectives/node_group.hpp"
#include "collectives/p2p.hpp"

namespace ipc::detail {
namespace {

// data = op(lower rank's operand, higher rank's), so that partners compute exactly the
// same thing even for operations that are not quite commutative (min/max with NaN).
void lower_first(std::byte* data, std::byte* other, std::size_t count, Reduction op, bool mine_is_lower) {
  if (mine_is_lower) {
    op.apply(data, other, count);
  } else {
    op.apply(other, data, count);
    base::copy_bytes(data, other, count * op.elem_size);
  }
}

// The ranks beyond the largest power of two, pof2: the first 2 rem ranks pair up, the
// even one of each pair hands its vector to the odd one and waits (fold_in), the odd
// ones and the rest run the algorithm as ranks 0..pof2-1 (newrank), and the even ones
// get the result back at the end (fold_out).
struct Fold {
  int pof2 = 1, rem = 0, newrank = -1;
  int real(int nr) const { return nr < rem ? nr * 2 + 1 : nr + rem; }  // newrank -> rank
};

Fold fold_in(const CollContext& c, std::byte* data, std::byte* tmp, std::size_t count, Reduction op) {
  Fold f;
  int p = c.size, r = c.rank;
  std::size_t bytes = count * op.elem_size;
  while (f.pof2 * 2 <= p) f.pof2 *= 2;
  f.rem = p - f.pof2;
  if (r >= 2 * f.rem) {
    f.newrank = r - f.rem;
  } else if (r % 2 == 0) {
    coll_send(c, data, bytes, r + 1, kAllreduce);
  } else {
    coll_recv(c, tmp, bytes, r - 1, kAllreduce);
    lower_first(data, tmp, count, op, false);
    f.newrank = r / 2;
  }
  return f;
}

void fold_out(const CollContext& c, const Fold& f, std::byte* data, std::size_t bytes) {
  int r = c.rank;
  if (r >= 2 * f.rem) return;
  if (r % 2 == 0)
    coll_recv(c, data, bytes, r + 1, kAllreduce);
  else
    coll_send(c, data, bytes, r - 1, kAllreduce);
}

void recursive_doubling(const CollContext& c, std::byte* data, std::size_t count, Reduction op) {
  std::size_t bytes = count * op.elem_size;
  std::vector<std::byte> tmp(bytes);
  Fold f = fold_in(c, data, tmp.data(), count, op);
  if (f.newrank >= 0) {
    for (int mask = 1; mask < f.pof2; mask <<= 1) {
      int dst = f.real(f.newrank ^ mask);
      coll_sendrecv(c, data, bytes, dst, tmp.data(), bytes, dst, kAllreduce);
      lower_first(data, tmp.data(), count, op, dst > c.rank);
    }
  }
  fold_out(c, f, data, bytes);
}

void ring(const CollContext& c, std::byte* data, std::size_t count, Reduction op) {
  int p = c.size, r = c.rank;
  std::size_t es = op.elem_size;
  // Block b holds elements [first(b), first(b+1)).
  auto first = [&](int b) { return count / p * b + std::min<std::size_t>(b, count % p); };
  auto len = [&](int b) { return first(b + 1) - first(b); };
  std::vector<std::byte> tmp((count / p + 1) * es);
  int right = (r + 1) % p, left = (r - 1 + p) % p;
  for (int s = 0; s < p - 1; ++s) {  // reduce-scatter
    int send_b = (r - s + p) % p, recv_b = (r - s - 1 + 2 * p) % p;
    coll_sendrecv(c, data + first(send_b) * es, len(send_b) * es, right, tmp.data(), len(recv_b) * es, left,
                  kAllreduce);
    op.apply(data + first(recv_b) * es, tmp.data(), len(recv_b));
  }
  for (int s = 0; s < p - 1; ++s) {  // allgather of the reduced blocks
    int send_b = (r + 1 - s + p) % p, recv_b = (r - s + p) % p;
    coll_sendrecv(c, data + first(send_b) * es, len(send_b) * es, right, data + first(recv_b) * es,
                  len(recv_b) * es, left, kAllreduce);
  }
}

// Rabenseifner: a reduce-scatter by recursive halving, then an allgather by recursive
// doubling, over the largest power of two of ranks (the others fold in first, as in
// recursive doubling, and get the result back at the end): the ring's volume, 2(p-1)/p
// of the vector per rank, in 2 log2 p steps instead of 2(p-1). Each block's sum is
// made by one rank (operands in rank order) and copied to the others, so every rank
// holds bitwise the same result.
void rabenseifner(const CollContext& c, std::byte* data, std::size_t count, Reduction op) {
  std::size_t es = op.elem_size, bytes = count * es;
  std::vector<std::byte> tmp(bytes);
  Fold f = fold_in(c, data, tmp.data(), count, op);
  const int pof2 = f.pof2, newrank = f.newrank;
  if (newrank >= 0) {
    // Block b of pof2 holds elements [first(b), first(b + 1)).
    auto first = [&](int b) { return count / pof2 * b + std::min<std::size_t>(b, count % pof2); };
    // Reduce-scatter: the range [lo, hi) of blocks this rank is responsible for halves
    // each step; it keeps the half on its side of the partner and sends the other.
    int lo = 0, hi = pof2;
    for (int mask = pof2 / 2; mask > 0; mask /= 2) {
      int partner = newrank ^ mask, mid = lo + (hi - lo) / 2;
      bool lower = newrank < partner;
      int keep_lo = lower ? lo : mid, keep_hi = lower ? mid : hi;
      int give_lo = lower ? mid : lo, give_hi = lower ? hi : mid;
      std::size_t keep_n = first(keep_hi) - first(keep_lo), give_n = first(give_hi) - first(give_lo);
      coll_sendrecv(c, data + first(give_lo) * es, give_n * es, f.real(partner), tmp.data(), keep_n * es,
                    f.real(partner), kAllreduceHalving);
      lower_first(data + first(keep_lo) * es, tmp.data(), keep_n, op, lower);
      lo = keep_lo;
      hi = keep_hi;
    }
    // Allgather: the ranges double back, each rank sending what it has.
    for (int mask = 1; mask < pof2; mask *= 2) {
      int partner = newrank ^ mask;
      int size = hi - lo;
      int other_lo = (newrank & mask) ? lo - size : lo + size;
      std::size_t mine_n = first(hi) - first(lo), theirs_n = first(other_lo + size) - first(other_lo);
      coll_sendrecv(c, data + first(lo) * es, mine_n * es, f.real(partner), data + first(other_lo) * es, theirs_n * es,
                    f.real(partner), kAllreduceHalving);
      lo = std::min(lo, other_lo);
      hi = lo + 2 * size;
    }
  }
  fold_out(c, f, data, bytes);
}

// Oversubscribed nodes, small vectors: every rank sends to rank 0, which reduces in
// rank order and sends the result back (two scheduling rounds instead of log2 p).
void flat_allreduce(const CollContext& c, std::byte* data, std::size_t count, Reduction op) {
  std::size_t bytes = count * op.elem_size;
  if (c.rank != 0) {
    coll_sendrecv(c, data, bytes, 0, data, bytes, 0, kAllreduceFlat);
    return;
  }
  std::vector<std::byte> tmp(bytes);
  for (int q = 1; q < c.size; ++q) {
    coll_recv(c, tmp.data(), bytes, q, kAllreduceFlat);
    op.apply(data, tmp.data(), count);
  }
  for (int q = 1; q < c.size; ++q) coll_send(c, data, bytes, q, kAllreduceFlat);
}

}  // namespace

void coll_allreduce(const CollContext& c, void* data, std::size_t count, Reduction op) {
  guarded(c, "allreduce", [&] {
    if (c.size == 1 || count == 0) return;
    if (auto* g = node_group(c); g && g->fits(op.elem_size)) return g->allreduce(data, count, op);
    if (auto* h = hierarchy(c)) return hier_allreduce(c, *h, data, count, op);
    auto* d = static_cast<std::byte*>(data);
    switch (allreduce_algorithm(c, count * op.elem_size, count)) {
      case AllreduceAlg::ring:
        return ring(c, d, count, op);
      case AllreduceAlg::rabenseifner:
        return rabenseifner(c, d, count, op);
      case AllreduceAlg::flat:
        return flat_allreduce(c, d, count, op);
      case AllreduceAlg::doubling:
        return recursive_doubling(c, d, count, op);
    }
  });
}

void coll_reduce(const CollContext& c, void* data, std::size_t count, Reduction op, int root) {
  guarded(c, "reduce", [&] {
    if (c.size == 1 || count == 0) return;
    if (auto* g = node_group(c); g && g->fits(op.elem_size)) return g->reduce(data, count, op, root);
    if (auto* h = hierarchy(c)) return hier_reduce(c, *h, data, count, op, root);
    // Binomial tree towards the root: log2 p rounds, each rank sends once.
    int p = c.size, vr = (c.rank - root + p) % p;
    std::size_t bytes = count * op.elem_size;
    std::vector<std::byte> tmp(bytes);
    for (int mask = 1; mask < p; mask <<= 1) {
      if (vr & mask) {
        coll_send(c, data, bytes, (vr - mask + root) % p, kReduce);
        return;
      }
      if (vr + mask < p) {
        coll_recv(c, tmp.data(), bytes, (vr + mask + root) % p, kReduce);
        op.apply(data, tmp.data(), count);
      }
    }
  });
}

}  // namespace ipc::detail
