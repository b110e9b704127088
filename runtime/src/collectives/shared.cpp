#include "collectives/shared.hpp"

#include <algorithm>
#include <iostream>
#include <map>
#include <thread>

#include "base/errors.hpp"
#include "base/names.hpp"
#include "base/params.hpp"

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

}  // namespace

void CollSetup::publish(bootstrap::Store& store, const bootstrap::JobInfo& job, bool shm) {
  // "auto", "1" or "0" (any spelling param_bool takes); anything else is an error here.
  std::string flat = base::param("IPC_COLL_FLAT");
  if (flat != "auto") {
    try {
      flat = base::param_bool("IPC_COLL_FLAT") ? "1" : "0";
    } catch (const UsageError&) {
      throw UsageError("IPC_COLL_FLAT='" + flat + "' is not auto, 1 or 0");
    }
  }
  store.put("coll/" + std::to_string(job.rank), std::to_string(std::thread::hardware_concurrency()));
  if (job.rank != 0) return;
  store.put("coll/flat", flat);
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
  shared->flat = go_flat(kv, cards);
  const std::string* group = find(kv, "coll/group");
  if (use_group(group, cards)) {
    if (job.rank != 0) segment_ = NodeSegment::open(*group, job.size);
    shared->group = std::make_unique<NodeGroup>(engine, std::move(segment_), job.rank, job.size, job.job, bell);
  }
  segment_ = NodeSegment{};  // rank 0's, when the job does not use it: removed now
  shared_ = shared.get();
  return shared;
}

void CollSetup::unlink() {
  segment_.unlink();
  if (shared_ && shared_->group) shared_->group->unlink();
}

}  // namespace ipc::detail
