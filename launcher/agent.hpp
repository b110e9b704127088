// The node agent: `ipcrun --agent`, one per host of a job, started by ipcrun (forked
// on ipcrun's own host, through the launch agent, ssh by default, on the others). It
// speaks to ipcrun on its stdin and stdout (link.hpp) and, on its host:
//   - forks the host's ranks (each the leader of its own process group) and tells
//     ipcrun their pids, then their wait statuses;
//   - relays their output as whole lines, each batch tagged with its stream;
//   - serves their bootstrap connections on 127.0.0.1, passing requests up the link
//     (one get per key, one fenced reply per fence for all of them);
//   - sends the signals ipcrun forwards to every rank's group;
//   - when the link drops (ipcrun killed, host cut off: nothing heard for the link
//     timeout), or on SIGTERM, SIGINT or SIGHUP, kills every rank's whole group, so
//     that what the ranks started dies too, removes their shared memory, and exits.
// Its stdout is the link: nothing else may write there. Its own complaints go to
// stderr, which ipcrun relays, naming the host.
#pragma once

#include <string>
#include <vector>

namespace ipc::launcher {

/// What ipcrun tells an agent: everything about the job that concerns its host.
/// It travels on the link (it holds the job secret).
struct AgentJob {
  std::string secret_hex;
  std::string job_id;
  int size = 0;                   // ranks in the job
  std::string node;               // this host's name as placed (the ranks' IPC_NODE)
  std::string cwd;                // the ranks' working directory
  std::string program;            // the path to exec
  std::vector<std::string> argv;  // argv[0] as the user gave it
  std::vector<std::string> env;   // NAME=VALUE set for the ranks on top of the agent's own
  std::vector<int> ranks;         // the ranks of this host, in rank order (local rank = index)
  std::string tcp_addr;           // the ranks' IPC_TCP_ADDR
  int first_cpu = -1;             // bind rank i to usable CPU first_cpu + i; -1: no binding
  bool tag_output = false;
  std::string stdin_mode = "none";  // rank 0's stdin: "none" (/dev/null), "fd" (descriptor 3), "link"
  int link_timeout_ms = 10000;

  std::vector<std::string> encode() const;
  /// @throws std::runtime_error when `parts` is not a job: too few parts, a number
  /// that is not one or out of range (size >= 1, first_cpu >= -1, link_timeout_ms >= 0,
  /// ranks increasing from 0 to size - 1, at least one).
  static AgentJob decode(const std::vector<std::string>& parts);
};

/// Runs the agent on descriptors 0 and 1; returns its exit status.
int run_agent();

}  // namespace ipc::launcher
