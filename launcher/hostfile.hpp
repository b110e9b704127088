// Where a job may run: hostfiles in Open MPI's syntax and --host lists.
//
// A hostfile has one host a line: a name, then optional `slots=N` (ranks it takes
// before it counts as full) and `max_slots=M` (ranks it may ever take, oversubscribed
// or not). `#` starts a comment, to the end of the line; blank lines are skipped. A
// host listed twice is one host whose slots (and max_slots) add up, as in Open MPI.
// A host without `slots=` takes as many as the host ipcrun runs on has CPUs (ranks are
// placed before any agent has started), at most its max_slots. The lines of one host
// must add up to at most 1048576 slots, and to max_slots >= slots when both are given.
// --host lists are `name[:N]` separated by commas, N slots (1 when not given).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipc::launcher {

struct Host {
  std::string name;
  std::optional<int> slots;      // none: as many as ipcrun's host has CPUs
  std::optional<int> max_slots;  // none: no limit (beyond --oversubscribe's)
};

/// Parses the text of a hostfile named `file` (for messages).
/// @throws ipc::UsageError "FILE:LINE: what is wrong" for the first bad line, or when
/// the file names no host.
std::vector<Host> parse_hostfile(std::string_view text, const std::string& file);
/// Reads and parses the hostfile at `path`. @throws ipc::UsageError naming the file
/// when it cannot be read, or as parse_hostfile.
std::vector<Host> read_hostfile(const std::string& path);
/// Parses a --host list such as "node1:2,node2:2,node3". @throws ipc::UsageError
/// naming `option` and the item that is wrong.
std::vector<Host> parse_host_list(std::string_view list, std::string_view option = "--host");

/// Whether `name` can be a host name or an address (letters, digits, '-', '.', '_',
/// and ':' inside an IPv6 address in brackets).
bool valid_host_name(std::string_view name);

/// Whether `name` names the host ipcrun runs on: "localhost", its host name
/// (`this_host`), a loopback address, or an IPv4 address of one of its interfaces.
bool names_this_host(std::string_view name, std::string_view this_host);

}  // namespace ipc::launcher
