// Hang diagnosis, ipcrun's side. `ipcrun --dump` (from another terminal), SIGQUIT to
// ipcrun, or a --timeout that fires makes ipcrun ask every agent for a dump: each
// agent sends its ranks' process states (/proc) and SIGURG to those that can answer;
// a rank's runtime answers with a report on its stderr (runtime/src/core/
// diagnostics.hpp), marked lines that its agent diverts to ipcrun. ipcrun waits until
// every rank has answered or IPC_DUMP_WAIT seconds have passed, then prints one
// block per rank and a summary that names the likely cause, on its stderr and into
// ${TMPDIR:-/tmp}/ipcrun-<pid>.dump, where `ipcrun --dump` reads it.
#pragma once

#include <string>
#include <vector>

namespace ipc::launcher {

class Dump {
 public:
  struct RankInfo {
    std::string node;
    long pid = -1;
    bool joined = false;   // its card is in the store: it has created its ipc::Runtime
    bool reachable = true; // its host's agent is still linked
  };
  explicit Dump(std::vector<RankInfo> ranks) : ranks_(std::move(ranks)), states_(ranks_.size()), lines_(ranks_.size()), ended_(ranks_.size(), false) {}

  /// The agent's word on `rank`'s process: R, S, D, T, t, Z, "ended", "not started".
  void state(int rank, std::string s);
  /// One line of `rank`'s report ("end" closes it).
  void line(int rank, std::string text);
  /// Every rank has a state, and every one that could answer has.
  bool complete() const;
  /// One block per rank, then the summary.
  std::string render() const;

 private:
  bool can_answer(std::size_t r) const;
  /// What a rank does, for the summary ("waits in allreduce #3 on world").
  std::string doing(std::size_t r) const;

  std::vector<RankInfo> ranks_;
  std::vector<std::string> states_;
  std::vector<std::vector<std::string>> lines_;
  std::vector<bool> ended_;
};

/// "0-2, 5" for ascending ranks.
std::string rank_ranges(const std::vector<int>& ranks);

/// Where a job's ipcrun of pid `pid` writes its dump.
std::string dump_path(long pid);

/// `ipcrun --dump [PID]`: asks the running job's ipcrun (the one of this user, or
/// PID) for a dump and prints it. Returns the exit status.
int request_dump(const std::string& pid_text);

}  // namespace ipc::launcher
