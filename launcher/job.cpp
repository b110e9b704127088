#include "job.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <condition_variable>
#include <map>
#include <mutex>
#include <climits>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <thread>

#include <asio/post.hpp>

#include "agent.hpp"
#include "base/net.hpp"
#include "base/params.hpp"
#include "hostfile.hpp"
#include "shm_cleanup.hpp"
#include "spawn.hpp"
#include "wire/secret.hpp"

extern char** environ;

namespace ipc::launcher {
namespace {

// Status of a job that lost a host, or could not start on one (as ssh's own).
constexpr int kHostStatus = 255;
// How long ranks that were sent SIGKILL may take to end before the job gives them up.
constexpr auto kGiveUp = std::chrono::seconds(5);

/// A line of a process's stderr, kept or passed on by its owner.
class LineCollector : public LineSink {
 public:
  explicit LineCollector(std::function<void(std::string)> line) : line_(std::move(line)) {}
  void write(std::string_view bytes) override {
    while (!bytes.empty()) {
      auto nl = bytes.find('\n');
      auto line = bytes.substr(0, nl);
      if (!line.empty()) line_(std::string(line));
      if (nl == std::string_view::npos) break;
      bytes.remove_prefix(nl + 1);
    }
  }

 private:
  std::function<void(std::string)> line_;
};

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

/// `text` quoted for a POSIX shell (the remote side of ssh runs one).
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

std::string self_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string current_dir() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "unknown signal";
}


// Longer than this is forever (a duration in nanoseconds overflows at 292 years, and
// --timeout 1e10 fired at once).
constexpr double kForever = 1e9;

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(std::min(s, kForever)));
}

std::chrono::milliseconds millis(double s) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(seconds(s));
}

std::string seconds_text(double s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace


// The state that the thread reading ipcrun's stdin for a rank 0 on another host
// shares with the job (see start_stdin_forwarding).
struct Job::StdinForward {
  std::mutex mu;
  std::condition_variable room;
  bool alive = true;  // false once the job is over: post nothing more
  std::size_t in_flight = 0;
  asio::io_context* io = nullptr;
  std::weak_ptr<Link> link;
};

Job::Job(const Options& options, std::string program, double kill_grace, Placement placement)
    : options_(options),
      program_(std::move(program)),
      kill_grace_(kill_grace),
      placement_(std::move(placement)),
      secret_(wire::make_secret()),
      signals_(io_, SIGCHLD, SIGINT, SIGTERM),
      timeout_timer_(io_),
      grace_timer_(io_),
      launch_timer_(io_),
      close_timer_(io_),
      dump_timer_(io_),
      ranks_(static_cast<std::size_t>(options.np)) {
  job_id_ = make_job_id();
  agent_path_ = self_path();
  launch_agent_ = split_words(options.launch_agent ? *options.launch_agent : base::param("IPC_LAUNCH_AGENT"));
  if (launch_agent_.empty()) throw std::runtime_error("the launch agent (--launch-agent, IPC_LAUNCH_AGENT) is empty");
  launch_timeout_ = options.launch_timeout ? *options.launch_timeout : base::param_seconds("IPC_LAUNCH_TIMEOUT");
  link_timeout_ = base::param_seconds("IPC_LINK_TIMEOUT");
  auto this_host = net::host_name();
  agents_.resize(placement_.hosts.size());
  for (std::size_t h = 0; h < agents_.size(); ++h) {
    agents_[h].index = static_cast<int>(h);
    agents_[h].local = names_this_host(placement_.hosts[h], this_host);
  }
}

Job::~Job() {
  if (stdin_forward_) {
    std::lock_guard lk(stdin_forward_->mu);
    stdin_forward_->alive = false;  // the thread posts nothing to io_ from now on
    stdin_forward_->room.notify_one();
  }
  if (dev_null_ >= 0) ::close(dev_null_);
  remove_job_segments(job_id_);  // what ranks that died during start-up left
  ::unlink(dump_path(::getpid()).c_str());
}

int Job::run() {
  remove_stale_segments(false);  // left by jobs whose ipcrun was killed
  start_output_thread();
  stdout_sink().on_broken([this] { asio::post(io_, [this] { stdout_broken(); }); });
  signals_.add(SIGTSTP);
  signals_.add(SIGCONT);
  signals_.add(SIGQUIT);
  signals_.add(SIGUSR1);
  signals_.add(SIGUSR2);
  wait_signals();  // from here on SIGCHLD, SIGINT, SIGTERM, SIGTSTP, SIGCONT, SIGQUIT, SIGUSR1/2 queue up for the loop

  KvRoot::Sinks sinks;
  sinks.value = [this](int c, const std::string& key, const std::string& value) {
    agents_[static_cast<std::size_t>(c)].link->send(LinkOp::value, {key, value});
  };
  sinks.fenced = [this](int c, const KvRoot::Pairs& pairs) {
    if (pairs != fenced_pairs_) {  // one encoding for every agent (held: no address reuse)
      fenced_pairs_ = pairs;
      fenced_bytes_ = encode_link_message(LinkOp::fenced, *pairs);
    }
    agents_[static_cast<std::size_t>(c)].link->send(fenced_bytes_);
  };
  sinks.report = [](const std::string& line) { stderr_sink().write("[ipcrun] " + line + "\n"); };
  root_ = std::make_unique<KvRoot>(options_.np, std::move(sinks));

  // What every rank gets besides its agent's environment: ipcrun's IPC_* variables
  // (the agents on other hosts do not have them), then -x, then the options with an
  // environment equivalent (later entries win).
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "IPC_", 4) == 0) rank_env_.emplace_back(*e);
  for (const auto& x : resolve_exports(options_.exports)) rank_env_.push_back(x.name + "=" + x.value);
  if (options_.transports) rank_env_.push_back("IPC_TRANSPORTS=" + *options_.transports);
  if (options_.report_transports) rank_env_.push_back("IPC_REPORT_TRANSPORTS=1");
  if (options_.iface) rank_env_.push_back("IPC_TCP_IFACE=" + *options_.iface);
  if (options_.port_range) rank_env_.push_back("IPC_TCP_PORTS=" + *options_.port_range);

  dev_null_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  bool rank0_here = agents_[static_cast<std::size_t>(placement_.host_of.front())].local;
  if (rank0_here && ::isatty(STDIN_FILENO)) {
    // A rank in its own process group would be stopped reading the terminal.
    if (StdinRelay::wanted()) {
      stdin_relay_ = std::make_shared<StdinRelay>(io_, stdin_fd_);
      if (stdin_fd_ < 0) stdin_fd_ = dev_null_;
    } else {
      stdin_fd_ = dev_null_;  // ipcrun runs in the background
    }
  }

  if (options_.timeout) {
    timeout_timer_.expires_after(seconds(*options_.timeout));
    timeout_timer_.async_wait([this](asio::error_code ec) {
      if (!ec) timed_out();
    });
  }
  launch_timer_.expires_after(seconds(launch_timeout_));
  launch_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) launch_timed_out();
  });

  if (options_.display_map)
    for (auto& line : placement_.map_lines()) stderr_sink().write("[ipcrun] " + line + "\n");
  unstarted_ = options_.np;
  for (auto& agent : agents_) {
    start_agent(agent);
    if (stop_ != Stop::none) break;
  }
  if (stdin_fd_ != STDIN_FILENO && stdin_fd_ != dev_null_) ::close(stdin_fd_);
  if (stdin_relay_) stdin_relay_->start();
  if (open_links_ == 0) finish();

  io_.run();
  reap_agents(std::chrono::seconds(2));
  flush_output();
  stdout_sink().on_broken(nullptr);
  if (timed_out_) return 124;
  return first_status_.value_or(0);
}

void Job::start_agent(Agent& agent) {
  const std::string& host = name_of(agent);
  SpawnRequest req;
  if (agent.local) {
    req.path = agent_path_;
    req.argv = {"ipcrun", "--agent"};
  } else {
    auto found = resolve_program(launch_agent_.front());
    if (auto* e = std::get_if<ProgramError>(&found)) return agent_not_started(host, "launch agent " + e->message);
    req.path = std::get<std::string>(found);
    req.argv = launch_agent_;
    req.argv.push_back(host);
    req.argv.push_back(shell_quote(agent_path_) + " --agent");
  }
  for (char** e = environ; *e; ++e) req.env.emplace_back(*e);
  req.death_signal = SIGTERM;  // the agent then kills its ranks
  // Rank 0's stdin: handed to a local agent as its descriptor 3, forwarded to another.
  bool has_rank0 = placement_.host_of.front() == agent.index;
  int stdin_copy = -1;  // not descriptor 0 itself: the child's 0 becomes the link first
  if (has_rank0 && agent.local && stdin_fd_ != dev_null_) req.extra_fd = stdin_copy = ::fcntl(stdin_fd_, F_DUPFD_CLOEXEC, 3);
  agent.has_stdin = stdin_copy >= 0;
  int to_agent[2] = {-1, -1};
  if (::pipe2(to_agent, O_CLOEXEC) != 0) return agent_not_started(host, std::string("pipe: ") + std::strerror(errno));
  req.stdin_fd = to_agent[0];
  auto result = spawn_rank(req);
  ::close(to_agent[0]);
  if (stdin_copy >= 0) ::close(stdin_copy);
  if (auto* e = std::get_if<SpawnError>(&result)) {
    ::close(to_agent[1]);
    return agent_not_started(host, e->what);
  }
  auto& child = std::get<SpawnedRank>(result);
  agent.pid = child.pid;
  Link::Handlers handlers;
  handlers.message = [this, &agent](LinkOp op, std::vector<std::string>& parts) { on_message(agent, op, parts); };
  handlers.lost = [this, &agent](const std::string& why) { link_lost(agent, why); };
  agent.link = std::make_shared<Link>(io_, child.out_fd, to_agent[1], std::move(handlers),
                                      millis(std::max(launch_timeout_, link_timeout_)));
  ++open_links_;
  agent.link->start();
  auto sink = std::make_shared<LineCollector>([this, &agent](std::string line) {
    if (!agent.hello) {
      agent.err_lines.push_back(std::move(line));
      if (agent.err_lines.size() > 4) agent.err_lines.pop_front();
    } else if (stop_ == Stop::none) {
      say(name_of(agent) + ": " + line);
    }
  });
  agent.err_open = true;
  // The collector lives as long as the relay (captured by its callback).
  agent.err = std::make_shared<RankOutput>(io_, child.err_fd, *sink, "", [this, &agent, sink] {
    agent.err_open = false;
    if (agent.failed) launch_failed(agent);
  });
  agent.err->start();
}

void Job::agent_not_started(const std::string& host, const std::string& why) {
  say("cannot start the agent on " + host + ": " + why + stopping(running_));
  if (!first_status_) first_status_ = kHostStatus;
  stop(Stop::launch, SIGTERM);
}

void Job::on_message(Agent& agent, LinkOp op, std::vector<std::string>& parts) {
  auto rank_of = [&](const std::string& text) {
    int r = std::atoi(text.c_str());
    return r >= 0 && r < options_.np && placement_.host_of[static_cast<std::size_t>(r)] == agent.index ? r : -1;
  };
  switch (op) {
    case LinkOp::hello:
      return on_hello(agent, parts);
    case LinkOp::started: {
      if (parts.size() != 2) return;
      int r = rank_of(parts[0]);
      if (r < 0) return;
      auto& rank = ranks_[static_cast<std::size_t>(r)];
      if (!rank.pending) return;
      rank.pid = std::atoi(parts[1].c_str());
      rank.pending = false;
      rank.running = true;
      ++running_;
      --unstarted_;  // a stop's signal, sent after the job, reached it: the agent starts all first
      return;
    }
    case LinkOp::spawn_failed: {
      if (parts.size() != 2) return;
      int r = rank_of(parts[0]);
      if (r < 0) return;
      // The agent starts its ranks in order and none after one that failed.
      for (int q = 0; q < options_.np; ++q) {
        auto& rank = ranks_[static_cast<std::size_t>(q)];
        if (placement_.host_of[static_cast<std::size_t>(q)] != agent.index || !rank.pending) continue;
        rank.pending = false;
        --unstarted_;
        root_->rank_gone(q);
      }
      if (stop_ == Stop::none)
        say("cannot start rank " + std::to_string(r) + " on " + node_of(r) + ": " + parts[1] + stopping(live()));
      if (!first_status_) first_status_ = 127;
      if (stop_ == Stop::none) stop(Stop::spawn, SIGTERM);
      return;
    }
    case LinkOp::output:
      if (parts.size() == 2) (parts[0] == "2" ? stderr_sink() : stdout_sink()).write(parts[1]);
      if (!output_paused_ && output_backlog() > kOutputHighWater) pause_output();
      return;
    case LinkOp::exited: {
      if (parts.size() != 2) return;
      int r = rank_of(parts[0]);
      if (r >= 0 && ranks_[static_cast<std::size_t>(r)].running) rank_ended(r, std::atoi(parts[1].c_str()));
      return;
    }
    case LinkOp::done:
      agent.done = true;
      return;
    case LinkOp::stdin_ack:
      if (parts.size() == 1) stdin_acknowledged(std::strtoull(parts[0].c_str(), nullptr, 10));
      return;
    case LinkOp::put:
      if (parts.size() == 2) root_->put(std::move(parts[0]), std::move(parts[1]));
      return;
    case LinkOp::get:
      if (parts.size() == 1) root_->get(agent.index, parts[0]);
      return;
    case LinkOp::fence:
      if (parts.size() == 1 && rank_of(parts[0]) >= 0) root_->fence(agent.index, rank_of(parts[0]));
      return;
    case LinkOp::report:
      if (parts.size() == 2 && rank_of(parts[0]) >= 0) root_->report(rank_of(parts[0]), std::move(parts[1]));
      return;
    case LinkOp::dump_state:
    case LinkOp::dump_line:
      if (dump_ && parts.size() == 2 && rank_of(parts[0]) >= 0) {
        if (op == LinkOp::dump_state)
          dump_->state(rank_of(parts[0]), std::move(parts[1]));
        else
          dump_->line(rank_of(parts[0]), std::move(parts[1]));
        if (dump_->complete()) end_dump();
      }
      return;
    default:
      return;
  }
}

void Job::on_hello(Agent& agent, std::vector<std::string>& parts) {
  if (agent.hello || parts.size() < 6) return;
  agent.hello = true;
  agent.address = parts[2];
  agent.ipcrun_address = parts[3];
  agent.boot_id = parts[4];
  agent.cpus = std::atoi(parts[5].c_str());
  agent.link->set_timeout(millis(link_timeout_));
  for (auto& line : agent.err_lines)
    if (stop_ == Stop::none) say(name_of(agent) + ": " + line);
  agent.err_lines.clear();
  if (++hellos_ == static_cast<int>(agents_.size()) && stop_ == Stop::none) send_jobs();
}

void Job::send_jobs() {
  launch_timer_.cancel();
  for (auto& agent : agents_)
    if (!agent.local && agent.address.empty() && !options_.iface) {
      say("cannot tell which address the ranks on " + name_of(agent) +
          " can be reached at (its agent found none but loopback): give --iface");
      if (!first_status_) first_status_ = kHostStatus;
      stop(Stop::launch, SIGTERM);
      return;
    }
  jobs_sent_ = true;
  // The address each host's ranks listen on: loopback when the job stays on this
  // host; else the address of the host that ipcrun's host reached it by (the ssh
  // connection's), and for this host the address the others see it by.
  bool all_local = std::all_of(agents_.begin(), agents_.end(), [](const Agent& a) { return a.local; });
  std::string here;
  for (auto& a : agents_)
    if (!a.local && !a.ipcrun_address.empty()) here = a.ipcrun_address;
  if (here.empty())
    for (auto& ia : net::ipv4_addresses())
      if (ia.address.rfind("127.", 0) != 0) {
        here = ia.address;
        break;
      }
  if (here.empty()) here = "127.0.0.1";

  // Hosts that share one machine (one boot id: containers, namespaces) share its
  // CPUs. Binding: each rank gets its own CPU when all of the machine's ranks fit.
  // Waiting: when they do not, every one of them yields from the first poll on (the
  // ranks themselves count only their own host's ranks).
  std::vector<int> first_cpu(agents_.size(), -1);
  std::vector<bool> crowded(agents_.size(), false);
  bool user_says = std::any_of(rank_env_.begin(), rank_env_.end(),
                               [](const std::string& e) { return e.rfind("IPC_OVERSUBSCRIBED=", 0) == 0; });
  std::map<std::string, std::vector<std::size_t>> machines;
  for (std::size_t h = 0; h < agents_.size(); ++h) machines[agents_[h].boot_id].push_back(h);
  for (auto& [boot, hosts] : machines) {
    int total = 0, cpus = 1 << 30;
    for (auto h : hosts) {
      total += placement_.local_size[h];
      cpus = std::min(cpus, std::max(1, agents_[h].cpus));
    }
    if (!boot.empty() && hosts.size() > 1 && total > cpus && !user_says)
      for (auto h : hosts) crowded[h] = true;
    if (options_.bind_to == "none" || (options_.bind_to == "auto" && (boot.empty() || total > cpus))) continue;
    int next = 0;
    for (auto h : hosts) {
      first_cpu[h] = next;
      next += placement_.local_size[h];
    }
  }

  auto cwd = current_dir();
  for (auto& agent : agents_) {
    AgentJob job;
    job.secret_hex = wire::to_hex(secret_);
    job.job_id = job_id_;
    job.size = options_.np;
    job.node = name_of(agent);
    job.cwd = cwd;
    job.program = program_;
    job.argv = options_.command;
    job.env = rank_env_;
    if (crowded[static_cast<std::size_t>(agent.index)]) job.env.push_back("IPC_OVERSUBSCRIBED=1");
    for (int r = 0; r < options_.np; ++r)
      if (placement_.host_of[static_cast<std::size_t>(r)] == agent.index) job.ranks.push_back(r);
    job.tcp_addr = all_local ? "127.0.0.1" : agent.local ? here : agent.address;
    job.first_cpu = first_cpu[static_cast<std::size_t>(agent.index)];
    job.tag_output = options_.tag_output;
    job.link_timeout_ms = static_cast<int>(std::min<long long>(millis(link_timeout_).count(), 1LL << 30));
    if (placement_.host_of.front() == agent.index) {
      if (agent.local)
        job.stdin_mode = agent.has_stdin ? "fd" : "none";
      else
        job.stdin_mode = start_stdin_forwarding(agent) ? "link" : "none";
    }
    agent.link->send(LinkOp::job, job.encode());
  }
}

// Rank 0 on another host reads ipcrun's stdin through its agent. A thread reads it
// (a plain file cannot be waited on with epoll) and posts what it read to the loop,
// at most kStdinWindow bytes ahead of what the agent has written into rank 0's pipe
// (stdin_ack), so that a rank 0 that reads slowly, or not at all, holds the reading
// up rather than filling memory.
bool Job::start_stdin_forwarding(Agent& agent) {
  if (::isatty(STDIN_FILENO) && !StdinRelay::wanted()) return false;  // in the background: rank 0 reads nothing
  int fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return false;
  constexpr std::size_t kStdinWindow = 1u << 20;
  auto state = std::make_shared<StdinForward>();
  state->io = &io_;
  state->link = agent.link;
  stdin_forward_ = state;
  std::thread([state, fd] {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      std::unique_lock lk(state->mu);
      state->room.wait(lk, [&] { return !state->alive || state->in_flight < kStdinWindow; });
      if (!state->alive) break;
      if (n <= 0) {
        asio::post(*state->io, [state] {
          if (auto l = state->link.lock()) l->send(LinkOp::stdin_eof);
        });
        break;
      }
      state->in_flight += static_cast<std::size_t>(n);
      asio::post(*state->io, [state, data = std::string(buf.data(), static_cast<std::size_t>(n))] {
        if (auto l = state->link.lock()) l->send(LinkOp::stdin_data, {data});
      });
    }
    ::close(fd);
  }).detach();
  return true;
}

void Job::stdin_acknowledged(std::size_t bytes) {
  if (!stdin_forward_) return;
  std::lock_guard lk(stdin_forward_->mu);
  stdin_forward_->in_flight -= std::min(bytes, stdin_forward_->in_flight);
  stdin_forward_->room.notify_one();
}

// Our stdout or stderr takes less than the ranks write: stop reading the agents
// until it has caught up. Their queues fill, then the ranks' pipes, then the ranks
// wait in write(), as they would writing to a slow reader directly. Heartbeats go
// on meanwhile, so no side counts the pause as a lost host.
void Job::pause_output() {
  output_paused_ = true;
  for (auto& agent : agents_)
    if (agent.link && agent.link->is_open()) agent.link->pause_reading(true);
  when_output_drained([this] {
    asio::post(io_, [this] {
      output_paused_ = false;
      if (finished_) return;
      for (auto& agent : agents_)
        if (agent.link && agent.link->is_open()) agent.link->pause_reading(false);
    });
  });
}

void Job::link_lost(Agent& agent, const std::string& why) {
  --open_links_;
  agent.closed = true;
  if (agent.done || finished_) return agent_closed(agent);
  if (!jobs_sent_) {
    // Before the job went out (said hello or not): the start failed on this host.
    // Its stderr says why (ssh's "connect to host ... No route to host"): report
    // once that has closed too, or after a moment.
    agent.failed = true;
    agent.lost_why = why;
    if (!agent.err_open) {
      launch_failed(agent);
    } else {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
      timer->async_wait([this, &agent, timer](asio::error_code) { launch_failed(agent); });
    }
    return;
  }
  // A host lost mid-job: its ranks are gone with it.
  if (agent.pid > 0 && !agent.reaped) ::kill(agent.pid, SIGTERM);
  std::vector<int> lost;
  for (int r = 0; r < options_.np; ++r) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    if (placement_.host_of[static_cast<std::size_t>(r)] == agent.index && (rank.running || rank.pending))
      lost.push_back(r);
  }
  if (stop_ == Stop::none) {
    std::string line = "lost host " + name_of(agent) + " (its agent: " + why + ")";
    if (!lost.empty()) line += "; its " + std::to_string(lost.size()) + (lost.size() == 1 ? " rank is" : " ranks are") + " gone";
    int others = live();
    for (int r : lost)
      if (ranks_[static_cast<std::size_t>(r)].running || jobs_sent_) --others;
    if (options_.keep_going) {
      say(line);
    } else {
      say(line + stopping(others));
    }
  }
  if (!first_status_) first_status_ = kHostStatus;
  for (int r : lost) rank_lost(r);
  if (!options_.keep_going && stop_ == Stop::none) stop(Stop::failure, SIGTERM);
  agent_closed(agent);
}

void Job::launch_failed(Agent& agent) {
  if (!agent.failed) return;
  agent.failed = false;  // once
  if (stop_ == Stop::none) {
    std::string why = agent.lost_why == "closed" ? "its link closed" : agent.lost_why;
    if (!agent.err_lines.empty()) why = agent.err_lines.back();
    say("cannot start the agent on " + name_of(agent) + ": " + why + stopping(running_));
  }
  if (!first_status_) first_status_ = kHostStatus;
  if (stop_ == Stop::none) stop(Stop::launch, SIGTERM);
  agent_closed(agent);
}

void Job::launch_timed_out() {
  if (stop_ != Stop::none || jobs_sent_) return;
  for (auto& agent : agents_) {
    if (agent.hello || agent.closed) continue;
    std::ostringstream os;
    os << "cannot start the agent on " << name_of(agent) << ": no answer within " << launch_timeout_ << " s";
    if (!agent.local) {
      os << " (launched with '";
      for (std::size_t i = 0; i < launch_agent_.size(); ++i) os << (i ? " " : "") << launch_agent_[i];
      os << "')";
    }
    if (!agent.err_lines.empty()) os << ": " << agent.err_lines.back();
    say(os.str());
  }
  if (!first_status_) first_status_ = kHostStatus;
  stop(Stop::launch, SIGTERM);
}

void Job::agent_closed(Agent& agent) {
  (void)agent;
  if (open_links_ == 0) {
    finish();
    return;
  }
  if (running_ == 0 && unstarted_ <= 0) all_ranks_ended();
}

void Job::wait_signals() {
  signals_.async_wait([this](asio::error_code ec, int sig) {
    if (ec || finished_) return;
    if (sig == SIGCHLD)
      reap();
    else if (sig == SIGTSTP)
      suspend();
    else if (sig == SIGCONT)
      signal_ranks(SIGCONT);  // after a stop, or harmless
    else if (sig == SIGQUIT)
      start_dump("asked for (SIGQUIT, ipcrun --dump)", nullptr);
    else if (sig == SIGUSR1 || sig == SIGUSR2)
      signal_ranks(sig);  // to every rank on every host ("write a checkpoint now")
    else
      interrupted(sig);
    if (!finished_) wait_signals();
  });
}

void Job::reap() {
  for (auto& agent : agents_) {
    if (agent.pid <= 0 || agent.reaped) continue;
    int status = 0;
    pid_t got;
    do {
      got = ::waitpid(agent.pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == agent.pid || (got < 0 && errno == ECHILD)) agent.reaped = true;
  }
}

void Job::rank_ended(int r, int status) {
  auto& rank = ranks_[static_cast<std::size_t>(r)];
  rank.running = false;
  --running_;
  root_->rank_gone(r);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!first_status_) first_status_ = code;
    if (stop_ == Stop::none) {
      std::string line = "rank " + std::to_string(r) + " on " + node_of(r) + " (pid " + std::to_string(rank.pid) + ") ";
      if (WIFEXITED(status))
        line += "exited with status " + std::to_string(code);
      else
        line += "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                signal_name(WTERMSIG(status)) + ")";
      if (options_.keep_going) {
        say(line);
      } else {
        say(line + stopping(running_));
        stop(Stop::failure, SIGTERM);
      }
    }
  }
  if (running_ == 0 && unstarted_ <= 0) all_ranks_ended();
}

void Job::rank_lost(int r) {
  auto& rank = ranks_[static_cast<std::size_t>(r)];
  if (rank.running) {
    rank.running = false;
    --running_;
  } else if (rank.pending) {
    rank.pending = false;
    --unstarted_;
  }
  root_->rank_gone(r);
}

void Job::all_ranks_ended() {
  timeout_timer_.cancel();
  grace_timer_.cancel();
  if (stdin_relay_) stdin_relay_->close();
}

void Job::interrupted(int sig) {
  if (!jobs_sent_) {
    // Still waiting for the agents: no rank runs yet; give the start up.
    if (stop_ == Stop::none) say("interrupted by " + signal_name(sig) + " while starting");
    if (!first_status_) first_status_ = 128 + sig;
    if (stop_ != Stop::launch) stop(Stop::launch, sig);
    return;
  }
  if (live() == 0) {
    finish();  // only lingering output left
    return;
  }
  if (stop_ == Stop::none) {
    say("interrupted by " + signal_name(sig) + stopping(live()));
    stop_ = Stop::interrupt;
    signal_ranks(sig);  // the ranks decide what it means; a second signal kills
    return;
  }
  say("interrupted by " + signal_name(sig) + (stop_ == Stop::interrupt ? " again" : "") + "; killing " +
      std::to_string(live()) + (live() == 1 ? " rank" : " ranks"));
  signal_ranks(SIGKILL);
}

// Job control: the ranks lead their own process groups, out of the terminal's
// foreground group (and the agents too), so a Ctrl-Z reaches ipcrun alone. It has the
// agents stop the ranks first (their whole groups, with the uncatchable SIGSTOP: a
// rank that handled SIGTSTP would keep running), then stops itself with SIGTSTP's
// default action, which hands the terminal back to the shell; the kernel discards
// that for an orphaned process group (nobody would ever continue it), and then the
// job simply goes on. The SIGCONT that continues ipcrun (fg, bg) is passed on to the
// ranks as well. Meanwhile neither side counts the silence against the link.
void Job::suspend() {
  signal_ranks(SIGSTOP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);  // for all of them
  for (auto& agent : agents_)
    if (agent.link && agent.link->is_open()) {
      agent.link->flush(left_until(deadline));
      agent.link->pause_watchdog(true);
    }
  struct sigaction dfl {}, ours {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGTSTP, &dfl, &ours);
  ::raise(SIGTSTP);  // returns once continued, or at once when discarded
  ::sigaction(SIGTSTP, &ours, nullptr);
  for (auto& agent : agents_)
    if (agent.link && agent.link->is_open()) agent.link->pause_watchdog(false);
  signal_ranks(SIGCONT);
}

// The reader of ipcrun's stdout went away (`ipcrun ... | head -1`): as in a shell
// pipeline, the writers get SIGPIPE, and ipcrun's status is that of a process killed
// by it (141), without a line of its own: the reader chose to stop. A rank that
// handles or ignores SIGPIPE gets SIGKILL after IPC_KILL_GRACE.
void Job::stdout_broken() {
  if (finished_ || stop_ != Stop::none || live() == 0) return;
  if (!first_status_) first_status_ = 128 + SIGPIPE;
  stop(Stop::pipe, SIGPIPE);
}

void Job::timed_out() {
  if (stop_ != Stop::none && stop_ != Stop::interrupt) return;
  if (!jobs_sent_) {
    say("job timed out after " + seconds_text(*options_.timeout) + " s while starting");
    timed_out_ = true;
    stop(Stop::launch, SIGTERM);
    return;
  }
  if (live() == 0) return;
  // First what every rank waits for: a job that ran out of time is usually stuck
  // (when it runs the library at all: other programs cannot answer).
  bool any_joined = false;
  for (int r = 0; r < options_.np; ++r) any_joined |= root_ && root_->has("card/" + std::to_string(r));
  auto stop_now = [this] {
    if ((stop_ != Stop::none && stop_ != Stop::interrupt) || live() == 0) return;
    say("job timed out after " + seconds_text(*options_.timeout) + " s" + stopping(live()));
    timed_out_ = true;
    stop(Stop::timeout, SIGTERM);
  };
  if (!any_joined) return stop_now();
  start_dump("the job timed out after " + seconds_text(*options_.timeout) + " s", stop_now);
}

void Job::start_dump(const std::string& reason, std::function<void()> then) {
  if (then) after_dump_.push_back(std::move(then));
  if (dump_) return;
  if (!jobs_sent_ || finished_) {
    say("dump asked for (" + reason + "): no rank has been started yet");
    return end_dump();
  }
  std::vector<Dump::RankInfo> info(ranks_.size());
  for (std::size_t r = 0; r < ranks_.size(); ++r) {
    int r_int = static_cast<int>(r);
    auto& agent = agents_[static_cast<std::size_t>(placement_.host_of[r])];
    info[r].node = node_of(r_int);
    info[r].pid = ranks_[r].pid;
    info[r].joined = root_ && root_->has("card/" + std::to_string(r));
    info[r].reachable = agent.link && agent.link->is_open() && agent.hello;
  }
  dump_ = std::make_unique<Dump>(std::move(info));
  dump_reason_ = reason;
  for (auto& agent : agents_)
    if (agent.link && agent.link->is_open() && agent.hello) agent.link->send(LinkOp::dump);
  dump_timer_.expires_after(seconds(base::param_seconds("IPC_DUMP_WAIT")));
  dump_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) end_dump();
  });
}

void Job::end_dump() {
  dump_timer_.cancel();
  if (dump_) {
    std::string text = "ipcrun: dump of job " + job_id_ + " (" + std::to_string(options_.np) + " ranks of " +
                       options_.command.front() + "): " + dump_reason_ + "\n" + dump_->render();
    dump_.reset();
    stderr_sink().write(text);
    // Also where `ipcrun --dump` finds it: written whole, then renamed into place.
    auto path = dump_path(::getpid());
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      ::close(fd);
      if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
    }
  }
  auto then = std::move(after_dump_);
  after_dump_.clear();
  for (auto& f : then) f();
}

void Job::stop(Stop reason, int sig) {
  stop_ = reason;
  if (reason == Stop::launch || reason == Stop::spawn) {
    // Agents that have not said hello yet never will be told anything: end them.
    for (auto& agent : agents_)
      if (!agent.hello && agent.pid > 0 && !agent.reaped) ::kill(agent.pid, SIGTERM);
  }
  if (reason == Stop::launch) {
    for (auto& agent : agents_)
      if (agent.link && agent.link->is_open() && agent.hello) agent.link->send(LinkOp::quit);
    if (open_links_ == 0) finish();
    return;
  }
  signal_ranks(sig);
  grace_timer_.expires_after(seconds(kill_grace_));
  grace_timer_.async_wait([this](asio::error_code ec) {
    if (ec) return;
    signal_ranks(SIGKILL);
    // A rank that SIGKILL does not end (uninterruptible sleep) must not keep the
    // job: a while later the agents are told to quit, and then the job ends.
    grace_timer_.expires_after(kGiveUp);
    grace_timer_.async_wait([this](asio::error_code ec) {
      if (ec || finished_) return;
      for (auto& agent : agents_)
        if (agent.link && agent.link->is_open()) agent.link->send(LinkOp::quit);
      grace_timer_.expires_after(kGiveUp);
      grace_timer_.async_wait([this](asio::error_code ec) {
        if (!ec) finish();
      });
    });
  });
}

void Job::signal_ranks(int sig) {
  for (auto& agent : agents_)
    if (agent.link && agent.link->is_open()) agent.link->send(LinkOp::signal, {std::to_string(sig)});
}

void Job::finish() {
  if (finished_) return;
  finished_ = true;
  timeout_timer_.cancel();
  grace_timer_.cancel();
  launch_timer_.cancel();
  dump_timer_.cancel();
  if (dump_) end_dump();  // what came so far: the job ended meanwhile
  asio::error_code ignored;
  signals_.cancel(ignored);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);  // for all of them
  for (auto& agent : agents_) {
    if (agent.link && agent.link->is_open()) {
      agent.link->send(LinkOp::quit);
      agent.link->flush(left_until(deadline));
      agent.link->close();
    }
    if (agent.err) agent.err->close();
  }
  if (stdin_relay_) stdin_relay_->close();
  if (root_) root_->stop();
  io_.stop();
}

// The agents' processes (and the launch agents') end once their links have closed;
// a moment for them, then they are made to, and a moment more (a process in
// uninterruptible sleep is left behind rather than waited for).
void Job::reap_agents(std::chrono::milliseconds limit) {
  auto poll = [this](std::chrono::steady_clock::time_point until) {
    for (;;) {
      bool left = false;
      for (auto& agent : agents_) {
        if (agent.pid <= 0 || agent.reaped) continue;
        int status = 0;
        pid_t got = ::waitpid(agent.pid, &status, WNOHANG);
        if (got == agent.pid || (got < 0 && errno != EINTR)) agent.reaped = true;
        else left = true;
      }
      if (!left || std::chrono::steady_clock::now() > until) return left;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  if (!poll(std::chrono::steady_clock::now() + limit)) return;
  for (auto& agent : agents_)
    if (agent.pid > 0 && !agent.reaped) ::kill(agent.pid, SIGKILL);
  poll(std::chrono::steady_clock::now() + std::chrono::seconds(1));
}

std::string Job::stopping(int count) const {
  if (count == 0) return "";
  return "; stopping " + std::to_string(count) + (count == 1 ? " rank" : " ranks");
}

}  // namespace ipc::launcher
