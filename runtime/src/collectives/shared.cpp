#include "collectives/shared.hpp"

#include <algorithm>
#include <iostream>
#include <map>
#include <thread>

#include "base/errors.hpp"
#include "base/names.hpp"
#include "base/params.hpp"
#include "core/context.hpp"
#include "core/engine.hpp"
#include "collectives/hierarchy.hpp"

namespace ipc::detail {
namespace {

const std::string* find(const bootstrap::KeyValues& kv, const std::string& key) {
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &it->second;
}

// Rank 0's IPC_COLL_FLAT when set, else whether any node has more ranks than CPUs.
bool go_flat(const bootstrap::KeyValues& kv, const std::vector<transport::PeerCard>& cards) {
  const std::string* forced = find(kv, "coll/flat");
  std::string f = forced ? *forced : "auto";
  if (f == "1") return true;
  if (f == "0") return false;
  std::map<std::string, int> ranks;
  for (auto& c : cards) ++ranks[c.node];
  for (auto& c : cards) {
    const std::string* v = find(kv, "coll/" + std::to_string(c.rank));
    int cpus = v ? std::atoi(v->c_str()) : 0;
    if (cpus > 0 && ranks[c.node] > cpus) return true;
  }
  return false;
}

// Whether the job runs its collectives in the node group: rank 0 made one, and every
// rank is on its node and speaks shm (the same answer on every rank: from the cards).
bool use_group(const std::string* group, const std::vector<transport::PeerCard>& cards) {
  if (!group || group->empty()) return false;
  for (auto& c : cards)
    if (c.node != cards.front().node || c.boot_id != cards.front().boot_id || !c.cards.count("shm")) return false;
  return true;
}

// "auto", "1" or "0" (any spelling param_bool takes); anything else is an error here.
std::string tristate(const char* name) {
  std::string v = base::param_checked(name);
  return v == "auto" ? v : base::param_bool(name) ? "1" : "0";
}

// The forced algorithms, checked against their choices (collectives/params.cpp):
// "op=algorithm;..." of those not "auto".
std::string forced_algorithms() {
  static const char* const ops[] = {"IPC_COLL_BARRIER", "IPC_COLL_BCAST", "IPC_COLL_ALLREDUCE", "IPC_COLL_ALLGATHER",
                                    "IPC_COLL_ALLTOALL"};
  std::string out;
  for (std::size_t i = 0; i < std::size(ops); ++i) {
    std::string v = base::param_checked(ops[i]);
    if (v != "auto") out += std::to_string(i) + "=" + v + ";";
  }
  return out;
}

}  // namespace

CollShared::CollShared() = default;
CollShared::~CollShared() = default;

void CollSetup::publish(bootstrap::Store& store, const bootstrap::JobInfo& job, bool shm, bool single_copy) {
  std::string flat = tristate("IPC_COLL_FLAT"), hier = tristate("IPC_COLL_HIER");
  std::string force = forced_algorithms();
  store.put("coll/" + std::to_string(job.rank), std::to_string(std::thread::hardware_concurrency()));
  if (job.rank != 0) return;
  store.put("coll/flat", flat);
  store.put("coll/hier", hier);
  store.put("coll/force", force);
  store.put("coll/pair", single_copy ? "1" : "0");
  // No segment, no group: the collectives then run over messages.
  if (shm && job.size > 1 && job.local_size == job.size) {
    if (std::size_t slot = node_slot_bytes(job.size)) {
      try {
        segment_ = NodeSegment::create(base::group_segment_name(job.job), job.size, slot);
      } catch (const Error& e) {
        std::cerr << "ipc: rank 0: collectives run over messages: " << e.what() << std::endl;
      }
    }
  }
  store.put("coll/group", segment_ ? segment_.name() : "");
}

std::unique_ptr<CollShared> CollSetup::finish(const bootstrap::KeyValues& kv,
                                              const std::vector<transport::PeerCard>& cards, Engine& engine,
                                              const bootstrap::JobInfo& job, const base::Doorbell& bell) {
  auto shared = std::make_unique<CollShared>();
  shared->job = job.job;
  shared->bell = &bell;
  shared->flat = go_flat(kv, cards);
  if (const std::string* h = find(kv, "coll/hier")) shared->hier = *h == "1" ? 1 : *h == "0" ? 0 : -1;
  if (const std::string* s = find(kv, "coll/pair")) shared->pair_single_copy = *s == "1";
  if (const std::string* f = find(kv, "coll/force")) {
    for (std::size_t at = 0; at < f->size();) {  // "op=algorithm;..."
      auto eq = f->find('=', at), end = f->find(';', at);
      if (eq == std::string::npos || end == std::string::npos || eq > end) break;
      int op = std::atoi(f->substr(at, eq - at).c_str());
      if (op >= 0 && op < static_cast<int>(CollOp::count)) shared->forced[op] = f->substr(eq + 1, end - eq - 1);
      at = end + 1;
    }
  }
  const std::string* group = find(kv, "coll/group");
  if (use_group(group, cards)) {
    if (job.rank != 0) segment_ = NodeSegment::open(*group, job.size);
    shared->group = std::make_unique<NodeGroup>(engine, std::move(segment_), job.rank, job.size, job.job, bell);
  }
  segment_ = NodeSegment{};  // rank 0's, when the job does not use it: removed now
  shared_ = shared.get();
  return shared;
}

namespace {
void min_int(void* inout, const void* in, std::size_t n) {
  auto* a = static_cast<int*>(inout);
  auto* b = static_cast<const int*>(in);
  for (std::size_t i = 0; i < n; ++i) a[i] = std::min(a[i], b[i]);
}
// Whether every rank of `c` says yes (over messages: `c` has no node group yet).
bool all_agree(const CollContext& c, bool yes) {
  int v = yes ? 1 : 0;
  coll_allreduce(c, &v, 1, Reduction{&min_int, sizeof(int)});
  return v == 1;
}
}  // namespace

// Rank 0 of the communicator makes the segment, the others map it once they know it
// is there; when all have (or any could not), rank 0 removes its name. The name holds
// the job, the context and the job rank of the communicator's rank 0 (the colors of a
// split share a context), so ipcrun's clean-up finds what a crash leaves.
void coll_make_node_group(const CollContext& c) {
  if (!c.shared || !c.shared->bell || c.size < 2) return;
  Engine& e = *c.engine;
  const Group* g = grouped(c.context) ? e.group_of(c.context) : nullptr;
  std::vector<int> members;
  for (int r = 0; r < c.size; ++r) members.push_back(g ? g->job[static_cast<std::size_t>(r)] : r);
  std::size_t slot = node_slot_bytes(c.size);
  bool here = slot > 0;
  {
    // A program that makes communicators in a loop would otherwise keep a segment for
    // each until the job ends: past the limit, over messages.
    std::lock_guard lk(c.shared->groups_mu);
    if (c.shared->groups.size() >= static_cast<std::size_t>(std::max<std::int64_t>(0, base::param_int("IPC_COMM_GROUPS"))))
      here = false;
  }
  for (int j : members)
    if (e.node_of(j) != e.node() || (j != e.rank() && e.transport_name(j) != "shm")) here = false;
  if (!all_agree(c, here)) return;
  std::string name = base::group_segment_name(c.shared->job) + std::to_string(c.context & ~kCollectiveBit) + "-" +
                     std::to_string(members.front());
  NodeSegment segment;
  int made = 1;
  if (c.rank == 0) {
    try {
      segment = NodeSegment::create(name, c.size, slot);
    } catch (const Error& ex) {
      made = 0;
      std::cerr << "ipc: a communicator's collectives run over messages: " << without_origin(ex.what()) << std::endl;
    }
  }
  coll_bcast(c, &made, sizeof made, 0);
  if (!made) return;
  bool opened = true;
  if (c.rank != 0) {
    try {
      segment = NodeSegment::open(name, c.size);
    } catch (const Error&) {
      opened = false;
    }
  }
  bool all = all_agree(c, opened);
  if (c.rank == 0) segment.unlink();
  if (!all) return;
  auto group = std::make_unique<NodeGroup>(e, std::move(segment), c.rank, c.size, c.shared->job, *c.shared->bell,
                                           std::move(members));
  std::lock_guard lk(c.shared->groups_mu);
  c.shared->groups[c.context] = std::move(group);
}

void CollSetup::unlink() {
  segment_.unlink();
  if (shared_ && shared_->group) shared_->group->unlink();
}

}  // namespace ipc::detail
