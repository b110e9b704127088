// Which host each rank of a job runs on, and its rank among those of its host.
//
// --map-by slot (the default) fills each host's slots before the next host's; --map-by
// node deals ranks to the hosts in turn, one each, while they have free slots. More
// ranks than slots is an error unless oversubscribing is allowed; then the extra ranks
// are dealt to the hosts in turn, skipping hosts that reached their max_slots. A host
// whose slot count is unknown (hostfile without slots=) counts `default_slots`, at most
// its max_slots.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hostfile.hpp"

namespace ipc::launcher {

enum class MapBy { slot, node };

struct Placement {
  std::vector<std::string> hosts;  // the hosts that got ranks, in the hostfile's order
  std::vector<int> host_of;        // by rank: index into hosts
  std::vector<int> local_rank;     // by rank: among the ranks of its host, in rank order
  std::vector<int> local_size;     // by host index: ranks on it

  /// "rank R on HOST (local rank L)": one line per rank, for --display-map.
  std::vector<std::string> map_lines() const;
};

/// Places `ranks` ranks on `hosts`. @throws ipc::UsageError saying how many ranks and
/// slots there are and what to do (--oversubscribe, more slots) when they do not fit.
Placement place(const std::vector<Host>& hosts, int ranks, MapBy map_by, bool oversubscribe, int default_slots);

/// Parses --map-by's value. @throws ipc::UsageError naming it.
MapBy parse_map_by(const std::string& value);

/// The placement of a job of `ranks` ranks: on the hosts of `hostfile` (a path) or
/// `host_list` (--host) when given, else every rank on this host (`this_host`, any
/// number of ranks). Hosts without a slot count have `cpus` slots.
/// @throws ipc::UsageError naming the hostfile and line, the host, or the shortage.
Placement plan_job(const std::optional<std::string>& hostfile, const std::optional<std::string>& host_list, int ranks,
                   const std::string& map_by, bool oversubscribe, const std::string& this_host, int cpus);

}  // namespace ipc::launcher
