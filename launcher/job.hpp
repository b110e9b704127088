// One job: its secret and key-value store, its node agents (one per host, agent.hpp)
// and through them its ranks, their output, and the rules that decide when it ends
// and with which exit status.
//
// Everything runs on one io_context in one thread: the links to the agents, the
// agents' stderr, SIGCHLD/SIGINT/SIGTERM/SIGTSTP/SIGCONT (asio::signal_set) and the
// timers. Start-up: every agent is started at once (forked on this host, through
// the launch agent on the others); once each has said hello (within the launch
// timeout), each gets its part of the job and starts its ranks.
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
//   stdout's reader gone (EPIPE): SIGPIPE to every rank, SIGKILL after the grace;
//                 no line; status 141 (as a writer in a shell pipeline).
//   SIGTSTP to ipcrun (Ctrl-Z): every rank's group is stopped (SIGSTOP), then ipcrun
//                 stops itself; SIGCONT to ipcrun (fg, bg) continues every rank.
//                 --timeout counts the stopped time too.
//   a rank that cannot be started: "ipcrun: cannot start rank R on NODE: <step>:
//                 <errno text>[; stopping K ranks]", stop, 127.
//   a host whose agent cannot be started, or does not answer within the launch
//                 timeout: "ipcrun: cannot start the agent on HOST: <why>", stop, 255.
//   a host lost mid-job (its link closed, or silent for the link timeout):
//                 "ipcrun: lost host HOST (<why>); its R ranks are gone[; stopping K
//                 ranks]", stop unless --keep-going, 255.
// A host's agent ends when every rank of it has been reaped and its pipes have
// closed, or 200 ms after its last rank was reaped when a descendant still holds a
// pipe. The job ends when every agent has ended.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include "dump.hpp"
#include "kv_root.hpp"
#include "link.hpp"
#include "options.hpp"
#include "placement.hpp"
#include "output.hpp"
#include "wire/secret.hpp"

namespace ipc::launcher {

class Job {
 public:
  /// `program` is the path resolve_program() found for options.command[0].
  /// `kill_grace` is IPC_KILL_GRACE in seconds.
  Job(const Options& options, std::string program, double kill_grace, Placement placement);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job();

  /// Starts the agents and through them the ranks, and runs until the job has ended;
  /// returns ipcrun's exit status.
  int run();

 private:
  enum class Stop { none, failure, timeout, interrupt, spawn, launch, pipe };

  struct Rank {
    pid_t pid = -1;
    bool pending = true;   // not reported started, nor given up
    bool running = false;  // started and not yet ended
  };

  /// The agent of one host and what ipcrun knows of it.
  struct Agent {
    int index = 0;
    bool local = false;          // forked here, not through the launch agent
    pid_t pid = -1;              // the agent, or the launch agent's process (ssh)
    bool reaped = false;
    std::shared_ptr<Link> link;
    std::shared_ptr<RankOutput> err;  // the process's stderr
    std::deque<std::string> err_lines;  // its last lines, before the agent said hello
    bool err_open = false;
    bool hello = false, done = false, closed = false, failed = false;
    bool has_stdin = false;  // holds ipcrun's stdin for rank 0 as its descriptor 3
    std::string address, ipcrun_address, boot_id;
    int cpus = 0;
    std::string lost_why;  // why the link failed, before the agent said hello
  };

  void start_agent(Agent& agent);
  /// The agent of `host` could not even be started: the line, the status, the stop.
  void agent_not_started(const std::string& host, const std::string& why);
  void on_message(Agent& agent, LinkOp op, std::vector<std::string>& parts);
  void on_hello(Agent& agent, std::vector<std::string>& parts);
  void send_jobs();
  void link_lost(Agent& agent, const std::string& why);
  void launch_failed(Agent& agent);
  void launch_timed_out();
  void agent_closed(Agent& agent);
  void wait_signals();
  void reap();
  void rank_ended(int rank, int wait_status);
  void rank_lost(int rank);
  void all_ranks_ended();
  void interrupted(int sig);
  void suspend();
  void timed_out();
  void stdout_broken();
  void stop(Stop reason, int sig);
  void signal_ranks(int sig);
  void finish();
  void reap_agents(std::chrono::milliseconds limit);
  std::string stopping(int count) const;
  /// Ranks running or about to: started, or sent to an agent that has not said yet.
  int live() const { return running_ + (jobs_sent_ ? std::max(unstarted_, 0) : 0); }
  bool start_stdin_forwarding(Agent& agent);
  void stdin_acknowledged(std::size_t bytes);
  struct StdinForward;
  void pause_output();
  /// Asks every rank what it waits for (launcher/dump.hpp); `then` runs once the
  /// dump is printed. A dump already under way takes `then` on.
  void start_dump(const std::string& reason, std::function<void()> then);
  void end_dump();

  asio::io_context io_;
  const Options& options_;
  std::string program_;
  double kill_grace_;
  Placement placement_;
  /// The host rank `r` runs on.
  const std::string& node_of(int r) const {
    return placement_.hosts[static_cast<std::size_t>(placement_.host_of[static_cast<std::size_t>(r)])];
  }
  const std::string& name_of(const Agent& a) const { return placement_.hosts[static_cast<std::size_t>(a.index)]; }
  std::string job_id_;
  wire::Secret secret_;
  std::vector<std::string> rank_env_;  // what every rank gets on top of its agent's environment
  std::string agent_path_;             // this binary, run with --agent
  std::vector<std::string> launch_agent_;
  double launch_timeout_ = 30;
  double link_timeout_ = 10;

  asio::signal_set signals_;
  asio::steady_timer timeout_timer_;
  asio::steady_timer grace_timer_;
  asio::steady_timer launch_timer_;
  asio::steady_timer close_timer_;
  asio::steady_timer dump_timer_;
  std::unique_ptr<Dump> dump_;
  std::string dump_reason_;
  std::vector<std::function<void()>> after_dump_;
  std::unique_ptr<KvRoot> root_;
  KvRoot::Pairs fenced_pairs_;  // the pairs last encoded for the agents
  std::shared_ptr<const std::vector<std::byte>> fenced_bytes_;
  std::shared_ptr<StdinRelay> stdin_relay_;
  std::shared_ptr<StdinForward> stdin_forward_;  // shared with its reading thread
  int stdin_fd_ = 0;    // for rank 0 on this host
  int dev_null_ = -1;

  std::vector<Agent> agents_;
  int hellos_ = 0;
  int open_links_ = 0;
  bool jobs_sent_ = false;
  bool output_paused_ = false;
  std::vector<Rank> ranks_;
  int running_ = 0;
  int unstarted_ = 0;  // ranks whose agent has not reported them started or failed
  Stop stop_ = Stop::none;
  bool timed_out_ = false;
  bool finished_ = false;
  std::optional<int> first_status_;
};

}  // namespace ipc::launcher
