// Hostfiles and --host lists, as a user may write them: any text either parses into
// hosts that placement can use or is refused with an ipc::UsageError (anything else
// escaping, or a crash, is a bug).
#include <set>
#include <string>
#include <string_view>

#include "base/errors.hpp"
#include "fuzz.hpp"
#include "hostfile.hpp"
#include "placement.hpp"

using namespace ipc::launcher;

namespace {

constexpr int kMaxSlots = 1 << 20;  // hostfile.cpp's bound on a host's counts

// What every parsed list holds: named, distinct hosts with counts of 1..kMaxSlots
// and max_slots >= slots; and placement takes it.
void check(const std::vector<Host>& hosts, bool is_list) {
  if (hosts.empty()) __builtin_trap();
  std::set<std::string> names;
  for (const auto& h : hosts) {
    if (!valid_host_name(h.name) || !names.insert(h.name).second) __builtin_trap();
    if (is_list && !h.slots) __builtin_trap();  // a list item has 1 slot when not given
    if (is_list && h.max_slots) __builtin_trap();
    if (h.slots && (*h.slots < 1 || *h.slots > kMaxSlots)) __builtin_trap();
    if (h.max_slots && (*h.max_slots < 1 || *h.max_slots > kMaxSlots)) __builtin_trap();
    if (h.slots && h.max_slots && *h.max_slots < *h.slots) __builtin_trap();
  }
  // A few ranks on them: placed within the hosts' limits, or refused for a shortage.
  for (MapBy by : {MapBy::slot, MapBy::node}) {
    try {
      auto p = place(hosts, 5, by, true, 2);
      if (p.host_of.size() != 5 || p.local_rank.size() != 5 || p.hosts.empty()) __builtin_trap();
      std::vector<int> count(p.hosts.size(), 0);
      for (std::size_t r = 0; r < 5; ++r) {
        auto at = static_cast<std::size_t>(p.host_of[r]);
        if (at >= p.hosts.size() || p.local_rank[r] != count[at]++) __builtin_trap();
      }
      for (std::size_t i = 0; i < p.hosts.size(); ++i) {
        if (count[i] != p.local_size[i] || count[i] == 0) __builtin_trap();
        for (const auto& h : hosts)
          if (h.name == p.hosts[i] && h.max_slots && count[i] > *h.max_slots) __builtin_trap();
      }
    } catch (const ipc::UsageError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check(parse_hostfile(text, "fuzz.hosts"), false);
  } catch (const ipc::UsageError& e) {
    if (std::string_view(e.what()).substr(0, 10) != "fuzz.hosts") __builtin_trap();  // names the file
  }
  try {
    check(parse_host_list(text), true);
  } catch (const ipc::UsageError& e) {
    if (std::string_view(e.what()).substr(0, 7) != "--host:") __builtin_trap();  // names the option
  }
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::string_view s : {
           "# the lab\n\nnode1 slots=2 max_slots=4   # the fast one\n  node2\tslots=2\nnode3\nnode1 slots=1\n",
           "10.0.0.7 slots=8\r\n[fe80::1] max-slots=3\n",
           "localhost   slots=2\n127.0.0.1   slots=2 max_slots=4\n",
           "node1:2,node2,[fe80::1]:3,node1:1",
           "a:1048576,a:1",  // once an int overflow, after 2048 of them
       })
    out.emplace_back(s.begin(), s.end());
  return out;
}
