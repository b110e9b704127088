// One job: its secret and bootstrap server, its ranks, their output, and the rules
// that decide when it ends and with which exit status.
//
// Everything runs on one io_context in one thread: the key-value server, the
// ranks' pipes, SIGCHLD/SIGINT/SIGTERM/SIGTSTP/SIGCONT (asio::signal_set) and the timers.
//
// Exit status: 0 when every rank exits 0. Otherwise the first rank to fail
// decides: its exit code, or 128+N when signal N killed it. ipcrun then prints
//   ipcrun: rank R on NODE (pid P) exited with status S; stopping K ranks
//   ipcrun: rank R on NODE (pid P) was killed by signal N (SIGNAME); stopping K ranks
// (K: ranks still running; "; stopping ..." is left out when K is 0, "1 rank" when
// it is 1) and stops the others: SIGTERM to each one's process group, SIGKILL after
// IPC_KILL_GRACE seconds. Ranks that ipcrun stopped are not failures.
//   --keep-going  every failing rank is reported (first clause only) and the others
//                 run on; the status is that of the first failure.
//   --timeout S   "ipcrun: job timed out after S s; stopping K ranks", stop, 124.
//   SIGINT/SIGTERM to ipcrun: "ipcrun: interrupted by SIGINT; stopping K ranks",
//                 the signal goes to every rank's group, a second one kills them;
//                 the status follows the ranks' own (130 for ranks killed by SIGINT).
//   SIGTSTP to ipcrun (Ctrl-Z): every rank's group is stopped (SIGSTOP), then ipcrun
//                 stops itself; SIGCONT to ipcrun (fg, bg) continues every rank.
//                 --timeout counts the stopped time too.
//   a rank that cannot be started: "ipcrun: cannot start rank R on NODE: <step>:
//                 <errno text>[; stopping K ranks]", stop, 127.
// The job ends when every rank has been reaped and its pipes have closed, or
// 200 ms after the last rank was reaped when a descendant still holds a pipe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include "kv_server.hpp"
#include "options.hpp"
#include "placement.hpp"
#include "output.hpp"

namespace ipc::launcher {

class Job {
 public:
  /// `program` is the path resolve_program() found for options.command[0].
  /// `kill_grace` is IPC_KILL_GRACE in seconds.
  Job(const Options& options, std::string program, double kill_grace, Placement placement);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job();

  /// Starts the ranks and runs until the job has ended; returns ipcrun's exit status.
  /// @throws std::system_error when the bootstrap server cannot listen.
  int run();

 private:
  enum class Stop { none, failure, timeout, interrupt, spawn };

  struct Rank {
    pid_t pid = -1;
    bool running = false;
    std::shared_ptr<RankOutput> out, err;
  };

  std::vector<std::string> environment_for(int rank) const;
  bool spawn(int rank);
  void wait_signals();
  void reap();
  void rank_ended(int rank, int wait_status);
  void all_ranks_ended();
  void stream_closed();
  void interrupted(int sig);
  void suspend();
  void timed_out();
  void stop(Stop reason, int sig);
  void signal_ranks(int sig);
  void finish();
  std::string stopping(int count) const;

  asio::io_context io_;
  const Options& options_;
  std::string program_;
  double kill_grace_;
  Placement placement_;
  /// The host rank `r` runs on.
  const std::string& node_of(int r) const {
    return placement_.hosts[static_cast<std::size_t>(placement_.host_of[static_cast<std::size_t>(r)])];
  }
  std::string job_id_;
  wire::Secret secret_;
  std::vector<std::string> base_env_;  // environment shared by all ranks
  std::vector<int> cpus_;              // CPU of rank r: cpus_[r % size]; empty: no binding

  asio::signal_set signals_;
  asio::steady_timer timeout_timer_;
  asio::steady_timer grace_timer_;
  asio::steady_timer linger_timer_;
  std::unique_ptr<KvServer> kv_;
  std::shared_ptr<StdinRelay> stdin_relay_;
  int stdin_fd_ = 0;    // for rank 0
  int dev_null_ = -1;   // for the others

  std::vector<Rank> ranks_;
  int running_ = 0;
  int open_streams_ = 0;
  Stop stop_ = Stop::none;
  bool timed_out_ = false;
  bool finished_ = false;
  std::optional<int> first_status_;
};

}  // namespace ipc::launcher
