// Node-aware collectives (collectives/hierarchy.hpp has the why and the steps).
#include "base/copy.hpp"
#include "collectives/hierarchy.hpp"

#include <cstring>
#include <map>
#include <string>

#include "collectives/p2p.hpp"
#include "collectives/shared.hpp"
#include "core/context.hpp"
#include "core/engine.hpp"

namespace ipc::detail {
namespace {

std::unique_ptr<Hierarchy> layout(const CollContext& c) {
  auto h = std::make_unique<Hierarchy>();
  Engine& e = *c.engine;
  const Group* g = grouped(c.context) ? e.group_of(c.context) : nullptr;
  auto job = [&](int r) { return g ? g->job[static_cast<std::size_t>(r)] : r; };
  std::map<std::string, int> index;
  for (int r = 0; r < c.size; ++r) {
    auto [it, fresh] = index.emplace(e.node_of(job(r)), static_cast<int>(h->members.size()));
    if (fresh) h->members.emplace_back();
    h->members[static_cast<std::size_t>(it->second)].push_back(r);
    h->node_of.push_back(it->second);
  }
  h->nodes = static_cast<int>(h->members.size());
  std::size_t largest = 0;
  for (auto& m : h->members) largest = std::max(largest, m.size());
  h->use = h->nodes >= 2 && (c.shared->hier == 1 || largest >= 2);
  if (!h->use) return h;
  const auto& mine = h->members[static_cast<std::size_t>(h->node_of[static_cast<std::size_t>(c.rank)])];
  std::vector<int> node_jobs, leader_jobs;
  for (std::size_t k = 0; k < mine.size(); ++k) {
    node_jobs.push_back(job(mine[k]));
    if (mine[k] == c.rank) h->node_rank = static_cast<int>(k);
  }
  h->node_size = static_cast<int>(mine.size());
  for (int i = 0; i < h->nodes; ++i) {
    int leader = h->members[static_cast<std::size_t>(i)].front();
    leader_jobs.push_back(job(leader));
    if (leader == c.rank) h->leader_rank = i;
  }
  e.add_group(node_context(c.context), std::move(node_jobs));
  e.add_group(leaders_context(c.context), std::move(leader_jobs));
  h->node = {c.engine, c.shared, node_context(c.context), h->node_rank, h->node_size};
  h->leaders = {c.engine, c.shared, leaders_context(c.context), h->leader_rank, h->nodes};
  return h;
}

// The node index of communicator rank r, its leader's rank, r's rank in its node.
int node_index(const Hierarchy& h, int r) { return h.node_of[static_cast<std::size_t>(r)]; }
int leader_of(const Hierarchy& h, int r) { return h.members[static_cast<std::size_t>(node_index(h, r))].front(); }
int rank_in_node(const Hierarchy& h, int r) {
  const auto& m = h.members[static_cast<std::size_t>(node_index(h, r))];
  return static_cast<int>(std::lower_bound(m.begin(), m.end(), r) - m.begin());
}

}  // namespace

const Hierarchy* hierarchy(const CollContext& c) {
  if (!c.shared || c.shared->hier == 0 || c.size < 2 || hierarchy_part(c.context)) return nullptr;
  {
    std::lock_guard lk(c.shared->hier_mu);
    auto it = c.shared->hierarchies.find(c.context);
    if (it != c.shared->hierarchies.end()) return it->second->use ? it->second.get() : nullptr;
  }
  // Made outside the lock: making the node step's group is a collective of the node's
  // ranks (they all make this communicator's layout in the same call), and one thread
  // at a time runs a communicator's collectives.
  auto h = layout(c);
  if (h->use && h->node_size > 1) coll_make_node_group(h->node);
  std::lock_guard lk(c.shared->hier_mu);
  auto& slot = c.shared->hierarchies[c.context];
  slot = std::move(h);
  return slot->use ? slot.get() : nullptr;
}

void hier_barrier(const CollContext& c, const Hierarchy& h) {
  (void)c;
  coll_barrier(h.node);
  if (h.leader_rank >= 0) coll_barrier(h.leaders);
  coll_barrier(h.node);
}

void hier_bcast(const CollContext& c, const Hierarchy& h, void* data, std::size_t bytes, int root) {
  int leader = leader_of(h, root);
  if (root != leader && node_index(h, c.rank) == node_index(h, root)) {  // to the root's leader first
    if (c.rank == root) coll_send(h.node, data, bytes, 0, kHierBcast);
    if (c.rank == leader) coll_recv(h.node, data, bytes, rank_in_node(h, root), kHierBcast);
  }
  if (h.leader_rank >= 0) coll_bcast(h.leaders, data, bytes, node_index(h, root));
  coll_bcast(h.node, data, bytes, 0);
}

void hier_allreduce(const CollContext& c, const Hierarchy& h, void* data, std::size_t count, Reduction op) {
  (void)c;
  coll_reduce(h.node, data, count, op, 0);
  if (h.leader_rank >= 0) coll_allreduce(h.leaders, data, count, op);
  coll_bcast(h.node, data, count * op.elem_size, 0);
}

void hier_reduce(const CollContext& c, const Hierarchy& h, void* data, std::size_t count, Reduction op, int root) {
  int leader = leader_of(h, root);
  coll_reduce(h.node, data, count, op, 0);
  if (h.leader_rank >= 0) coll_reduce(h.leaders, data, count, op, node_index(h, root));
  if (root != leader && node_index(h, c.rank) == node_index(h, root)) {  // the leader's result to the root
    std::size_t bytes = count * op.elem_size;
    if (c.rank == leader) coll_send(h.node, data, bytes, rank_in_node(h, root), kHierReduce);
    if (c.rank == root) coll_recv(h.node, data, bytes, 0, kHierReduce);
  }
}

void hier_allgather(const CollContext& c, const Hierarchy& h, const void* in, std::size_t bytes, void* out) {
  auto* o = static_cast<std::byte*>(out);
  bool leader = h.leader_rank >= 0;
  // Node blocks, one after the other in node order: node i's ranks in rank order.
  std::vector<std::byte> nodes(leader ? static_cast<std::size_t>(c.size) * bytes : 0);
  std::vector<std::size_t> counts, displs;
  std::size_t at = 0;
  for (auto& m : h.members) {
    counts.push_back(m.size() * bytes);
    displs.push_back(at);
    at += m.size() * bytes;
  }
  std::size_t mine = static_cast<std::size_t>(node_index(h, c.rank));
  coll_gather(h.node, in, bytes, leader ? nodes.data() + displs[mine] : nullptr, 0);
  if (leader) {
    // In place: the node's own block is where allgatherv puts it.
    coll_allgatherv(h.leaders, nodes.data() + displs[mine], counts[mine], nodes.data(), counts.data(), displs.data());
    for (std::size_t i = 0; i < h.members.size(); ++i)
      for (std::size_t k = 0; k < h.members[i].size(); ++k)
        if (bytes)
          base::copy_bytes(o + static_cast<std::size_t>(h.members[i][k]) * bytes, nodes.data() + displs[i] + k * bytes, bytes);
  }
  coll_bcast(h.node, out, static_cast<std::size_t>(c.size) * bytes, 0);
}

}  // namespace ipc::detail
