#include "placement.hpp"

#include <algorithm>

#include "base/errors.hpp"

namespace ipc::launcher {

std::vector<std::string> Placement::map_lines() const {
  std::vector<std::string> out;
  for (std::size_t r = 0; r < host_of.size(); ++r)
    out.push_back("rank " + std::to_string(r) + " on " + hosts[static_cast<std::size_t>(host_of[r])] +
                  " (local rank " + std::to_string(local_rank[r]) + ")");
  return out;
}

Placement plan_job(const std::optional<std::string>& hostfile, const std::optional<std::string>& host_list, int ranks,
                   const std::string& map_by, bool oversubscribe, const std::string& this_host, int cpus) {
  std::vector<Host> hosts;
  if (hostfile)
    hosts = read_hostfile(*hostfile);
  else if (host_list)
    hosts = parse_host_list(*host_list);
  else  // a laptop is not a cluster with slots: any number of ranks, here
    return place({Host{this_host, ranks, std::nullopt}}, ranks, MapBy::slot, true, cpus);
  (void)this_host;
  return place(hosts, ranks, parse_map_by(map_by), oversubscribe, cpus);
}

MapBy parse_map_by(const std::string& value) {
  if (value == "slot") return MapBy::slot;
  if (value == "node") return MapBy::node;
  throw UsageError("--map-by: '" + value + "' is not slot or node");
}

Placement place(const std::vector<Host>& hosts, int ranks, MapBy map_by, bool oversubscribe, int default_slots) {
  if (hosts.empty()) throw UsageError("no host to run on");
  if (ranks < 1) throw UsageError("a job needs at least one rank, not " + std::to_string(ranks));
  const std::size_t h = hosts.size();
  std::vector<long> slots(h), cap(h), used(h, 0);
  long total = 0;
  for (std::size_t i = 0; i < h; ++i) {
    slots[i] = hosts[i].slots.value_or(default_slots < 1 ? 1 : default_slots);
    cap[i] = hosts[i].max_slots.value_or(-1);  // -1: no limit
    if (cap[i] >= 0) slots[i] = std::min(slots[i], cap[i]);  // CPUs beyond max_slots are no slots
    total += slots[i];
  }
  if (ranks > total && !oversubscribe)
    throw UsageError(std::to_string(ranks) + " ranks, but the " + std::to_string(h) + " host" + (h == 1 ? "" : "s") +
                     " given have " + std::to_string(total) + " slot" + (total == 1 ? "" : "s") +
                     ": ask for fewer ranks, give more slots, or allow more ranks than slots with --oversubscribe");
  std::vector<int> host_of;
  host_of.reserve(static_cast<std::size_t>(ranks));
  auto take = [&](std::size_t i) {
    host_of.push_back(static_cast<int>(i));
    ++used[i];
  };
  // Within the slots.
  if (map_by == MapBy::slot) {
    for (std::size_t i = 0; i < h && static_cast<int>(host_of.size()) < ranks; ++i)
      while (used[i] < slots[i] && static_cast<int>(host_of.size()) < ranks) take(i);
  } else {
    for (bool any = true; any && static_cast<int>(host_of.size()) < ranks;) {
      any = false;
      for (std::size_t i = 0; i < h && static_cast<int>(host_of.size()) < ranks; ++i)
        if (used[i] < slots[i]) {
          take(i);
          any = true;
        }
    }
  }
  // Beyond them (oversubscribed): in turn, below each host's max_slots.
  while (static_cast<int>(host_of.size()) < ranks) {
    bool any = false;
    for (std::size_t i = 0; i < h && static_cast<int>(host_of.size()) < ranks; ++i)
      if (cap[i] < 0 || used[i] < cap[i]) {
        take(i);
        any = true;
      }
    if (!any) {
      long most = 0;
      for (std::size_t i = 0; i < h; ++i) most += cap[i];
      throw UsageError(std::to_string(ranks) + " ranks, but the hosts' max_slots allow " + std::to_string(most) +
                       " even oversubscribed");
    }
  }
  // Hosts that got ranks, in the given order; local ranks in rank order.
  Placement p;
  std::vector<int> order(h, -1);
  for (std::size_t i = 0; i < h; ++i)
    if (used[i] > 0) {
      order[i] = static_cast<int>(p.hosts.size());
      p.hosts.push_back(hosts[i].name);
    }
  p.local_size.assign(p.hosts.size(), 0);
  for (int i : host_of) {
    int host = order[static_cast<std::size_t>(i)];
    p.host_of.push_back(host);
    p.local_rank.push_back(p.local_size[static_cast<std::size_t>(host)]++);
  }
  return p;
}

}  // namespace ipc::launcher
