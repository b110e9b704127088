#include "agent.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "base/names.hpp"
#include "base/net.hpp"
#include "kv_server.hpp"
#include "link.hpp"
#include "output.hpp"
#include "spawn.hpp"
#include "wire/secret.hpp"

extern char** environ;

namespace ipc::launcher {

// ---- AgentJob on the wire: fixed fields, then counted lists ----

std::vector<std::string> AgentJob::encode() const {
  std::vector<std::string> p{secret_hex, job_id,       std::to_string(size),       node,
                             cwd,        program,      tcp_addr,                   std::to_string(first_cpu),
                             tag_output ? "1" : "0",   stdin_mode, std::to_string(link_timeout_ms)};
  p.push_back(std::to_string(argv.size()));
  p.insert(p.end(), argv.begin(), argv.end());
  p.push_back(std::to_string(env.size()));
  p.insert(p.end(), env.begin(), env.end());
  p.push_back(std::to_string(ranks.size()));
  for (int r : ranks) p.push_back(std::to_string(r));
  return p;
}

AgentJob AgentJob::decode(const std::vector<std::string>& p) {
  std::size_t i = 0;
  auto next = [&]() -> const std::string& {
    if (i >= p.size()) throw std::runtime_error("job message too short");
    return p[i++];
  };
  // The next part, a whole number from lo to hi.
  auto number = [&](long lo, long hi) {
    const std::string& s = next();
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) throw std::runtime_error("job message: '" + s + "' is not a number");
    if (v < lo || v > hi)
      throw std::runtime_error("job message: " + s + " is not within " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
  };
  auto list = [&](std::vector<std::string>& out) {
    long n = number(0, static_cast<long>(p.size() - i));
    for (long k = 0; k < n; ++k) out.push_back(next());
  };
  constexpr long kIntMax = std::numeric_limits<int>::max();
  AgentJob j;
  j.secret_hex = next();
  j.job_id = next();
  j.size = static_cast<int>(number(1, kIntMax));
  j.node = next();
  j.cwd = next();
  j.program = next();
  j.tcp_addr = next();
  j.first_cpu = static_cast<int>(number(-1, kIntMax));
  j.tag_output = next() == "1";
  j.stdin_mode = next();
  j.link_timeout_ms = static_cast<int>(number(0, kIntMax));
  list(j.argv);
  list(j.env);
  long n = number(0, static_cast<long>(p.size() - i));
  for (long k = 0; k < n; ++k)  // in rank order, each a rank of the job
    j.ranks.push_back(static_cast<int>(number(j.ranks.empty() ? 0 : j.ranks.back() + 1, j.size - 1)));
  if (j.ranks.empty()) throw std::runtime_error("job message: no ranks");
  return j;
}

namespace {

constexpr auto kLinger = std::chrono::milliseconds(200);

// ipcrun prints these as "ipcrun: HOST: <text>".
void agent_say(const std::string& text) { stderr_sink().write(text + "\n"); }

void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::string prefix = name + "=";
  for (auto& e : env)
    if (e.compare(0, prefix.size(), prefix) == 0) {
      e = prefix + value;
      return;
    }
  env.push_back(prefix + value);
}

void set_env(std::vector<std::string>& env, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq != std::string::npos) set_env(env, assignment.substr(0, eq), assignment.substr(eq + 1));
}

/// The two addresses of the ssh connection that started this agent: this host's (as
/// ipcrun's host reaches it) and ipcrun's host's (as seen from here). Without ssh:
/// this host's first address that is not loopback, and nothing.
std::pair<std::string, std::string> ssh_addresses() {
  std::string client, client_port, server;
  if (const char* c = std::getenv("SSH_CONNECTION")) {  // "client_ip client_port server_ip server_port"
    std::istringstream in(c);
    in >> client >> client_port >> server;
  }
  if (server.empty()) {
    // Started some other way: the host's first address that is not loopback.
    for (auto& a : net::ipv4_addresses())
      if (a.address.rfind("127.", 0) != 0) {
        server = a.address;
        break;
      }
  }
  return {server, client};
}

/// Output of one stream of one rank, on its way up the link.
class LinkSink : public LineSink {
 public:
  LinkSink(const std::shared_ptr<Link>& link, std::string stream) : link_(link), stream_(std::move(stream)) {}
  void write(std::string_view bytes) override {
    if (link_->is_open()) link_->send2(LinkOp::output, stream_, bytes);
  }
  bool ready(const std::function<void()>& resume) override {
    if (!link_->is_open() || link_->backlog() < Link::kHighWater) return true;
    link_->when_drained(resume);
    return false;
  }

 private:
  const std::shared_ptr<Link>& link_;  // the agent's, set after this is made
  std::string stream_;
};

/// Rank 0's standard input when ipcrun forwards it over the link.
class StdinFeed : public std::enable_shared_from_this<StdinFeed> {
 public:
  /// `ack(n)`: n bytes were written to rank 0, or dropped (ipcrun sends more then).
  StdinFeed(asio::io_context& io, int write_fd, std::function<void(std::size_t)> ack)
      : pipe_(io, write_fd), ack_(std::move(ack)) {}
  void push(std::string bytes) {
    if (!pipe_.is_open()) return ack_(bytes.size());
    queue_.push_back(std::move(bytes));
    if (queue_.size() == 1) next();
  }
  void end() {
    eof_ = true;
    if (queue_.empty()) close();
  }
  void close() {
    asio::error_code ignored;
    pipe_.close(ignored);
    std::size_t dropped = 0;
    for (auto& q : queue_) dropped += q.size();
    queue_.clear();
    if (dropped) ack_(dropped);
  }

 private:
  void next() {
    auto self = shared_from_this();
    asio::async_write(pipe_, asio::buffer(queue_.front()), [self](asio::error_code ec, std::size_t) {
      if (ec) return self->close();  // rank 0 is gone or closed its stdin
      self->ack_(self->queue_.front().size());
      self->queue_.pop_front();
      if (!self->queue_.empty())
        self->next();
      else if (self->eof_)
        self->close();
    });
  }
  asio::posix::stream_descriptor pipe_;
  std::function<void(std::size_t)> ack_;
  std::deque<std::string> queue_;
  bool eof_ = false;
};

class Agent {
 public:
  Agent(int in_fd, int out_fd, std::unique_ptr<Spawner> spawner)
      : signals_(io_, SIGCHLD, SIGTERM, SIGINT), linger_(io_), deadline_(io_), spawner_(std::move(spawner)) {
    signals_.add(SIGHUP);
    Link::Handlers h;
    h.message = [this](LinkOp op, std::vector<std::string>& parts) { on_message(op, parts); };
    h.lost = [this](const std::string& why) { lost("the link to ipcrun " + why); };
    // Until the job arrives, ipcrun's launch timeout bounds the wait.
    link_ = std::make_shared<Link>(io_, in_fd, out_fd, std::move(h), std::chrono::seconds(60));
  }

  int run() {
    wait_signals();
    link_->start();
    auto [mine, theirs] = ssh_addresses();
    link_->send(LinkOp::hello, {net::host_name(), std::to_string(::getpid()), mine, theirs, net::boot_id(),
                                std::to_string(usable_cpus().size())});
    io_.run();
    return status_;
  }

 private:
  struct Rank {
    int rank = -1;
    pid_t pid = -1;
    bool running = false;
    std::shared_ptr<RankOutput> out, err;
  };

  // Hang diagnosis (launcher/dump.hpp): every rank's process state, and SIGURG to
  // those that can answer; their report lines come back through their stderr.
  std::string dump_mark() const { return "\x1eipc-dump " + job_.job_id + " "; }
  void dump() {
    for (auto& rank : ranks_) {
      std::string state = rank.running ? process_state(rank.pid) : "ended";
      if (rank.pid <= 0) state = "not started";
      if (rank.running && state != "T" && state != "t" && state != "Z") ::kill(rank.pid, SIGURG);
      link_->send(LinkOp::dump_state, {std::to_string(rank.rank), state});
    }
  }
  static std::string process_state(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(f, text);
    auto close = text.rfind(')');  // the name may hold spaces and parentheses
    if (close == std::string::npos || close + 2 >= text.size()) return "?";
    return text.substr(close + 2, 1);
  }

  void on_message(LinkOp op, std::vector<std::string>& parts) {
    switch (op) {
      case LinkOp::job:
        if (started_) return;
        try {
          start_job(AgentJob::decode(parts));
        } catch (const std::exception& e) {
          agent_say(std::string("cannot start: ") + e.what());
          exit_now(1);
        }
        return;
      case LinkOp::signal:
        if (parts.size() == 1) signal_ranks(std::atoi(parts[0].c_str()));
        return;
      case LinkOp::value:
        if (kv_ && parts.size() == 2) kv_->deliver_value(parts[0], parts[1]);
        return;
      case LinkOp::fenced:
        if (kv_) kv_->deliver_fenced(std::make_shared<const std::vector<std::string>>(std::move(parts)));
        return;
      case LinkOp::stdin_data:
        if (stdin_ && parts.size() == 1) stdin_->push(std::move(parts[0]));
        return;
      case LinkOp::stdin_eof:
        if (stdin_) stdin_->end();
        return;
      case LinkOp::quit:
        stop_all("");
        return;
      case LinkOp::dump:
        dump();
        return;
      default:
        return;  // from a newer ipcrun: ignored
    }
  }

  void start_job(AgentJob job) {
    started_ = true;
    job_ = std::move(job);
    link_->set_timeout(std::chrono::milliseconds(job_.link_timeout_ms));
    ranks_.resize(job_.ranks.size());
    for (std::size_t i = 0; i < ranks_.size(); ++i) ranks_[i].rank = job_.ranks[i];
    raise_descriptor_limit();
    auto secret = wire::secret_from_hex(job_.secret_hex);
    if (!secret) throw std::runtime_error("the job secret is not 64 hex digits");

    // The ranks' bootstrap server: on this host's loopback, requests up the link.
    KvServerHooks hooks;
    hooks.upstream.put = [this](std::string k, std::string v) { link_->send(LinkOp::put, {k, v}); };
    hooks.upstream.get = [this](const std::string& k) { link_->send(LinkOp::get, {k}); };
    hooks.upstream.fence = [this](int rank) { link_->send(LinkOp::fence, {std::to_string(rank)}); };
    hooks.upstream.report = [this](int rank, std::string line) {
      link_->send(LinkOp::report, {std::to_string(rank), line});
    };
    hooks.log = [this](const std::string& text) {
      if (!stopping_) agent_say(text);
    };
    kv_ = std::make_unique<KvServer>(io_, *secret, job_.size,
                                     asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), hooks);

    base_env_.clear();
    for (char** e = environ; *e; ++e) base_env_.emplace_back(*e);
    for (auto& e : job_.env) set_env(base_env_, e);
    set_env(base_env_, "IPC_SIZE", std::to_string(job_.size));
    set_env(base_env_, "IPC_JOB", job_.job_id);
    set_env(base_env_, "IPC_DUMP_MARK", dump_mark());
    set_env(base_env_, "IPC_BOOTSTRAP", "127.0.0.1:" + std::to_string(kv_->port()));
    set_env(base_env_, "IPC_JOB_SECRET", job_.secret_hex);
    set_env(base_env_, "IPC_TCP_ADDR", job_.tcp_addr);
    set_env(base_env_, "IPC_NODE", job_.node);
    set_env(base_env_, "IPC_LOCAL_SIZE", std::to_string(ranks_.size()));
    if (job_.first_cpu >= 0) cpus_ = usable_cpus();

    dev_null_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::string failure;
    if (!job_.cwd.empty() && ::chdir(job_.cwd.c_str()) != 0)
      failure = "chdir " + job_.cwd + ": " + std::strerror(errno);
    else if (auto shortage = descriptor_shortage(static_cast<long>(ranks_.size())))
      failure = *shortage;
    if (!failure.empty()) {
      link_->send(LinkOp::spawn_failed, {std::to_string(ranks_.front().rank), failure});
      maybe_done();
      return;
    }
    for (std::size_t i = 0; i < ranks_.size(); ++i)
      if (!spawn(i)) break;
    if (dev_null_ >= 0) {
      ::close(dev_null_);
      dev_null_ = -1;
    }
    maybe_done();
  }

  bool spawn(std::size_t i) {
    auto& rank = ranks_[i];
    SpawnRequest req;
    req.path = job_.program;
    req.argv = job_.argv;
    req.env = base_env_;
    set_env(req.env, "IPC_RANK", std::to_string(rank.rank));
    set_env(req.env, "IPC_LOCAL_RANK", std::to_string(i));
    req.stdin_fd = dev_null_;
    int feed[2] = {-1, -1};
    if (rank.rank == 0 && job_.stdin_mode == "fd") {
      req.stdin_fd = 3;
    } else if (rank.rank == 0 && job_.stdin_mode == "link" && ::pipe2(feed, O_CLOEXEC) == 0) {
      req.stdin_fd = feed[0];
    }
    if (!cpus_.empty()) req.cpu = cpus_[(static_cast<std::size_t>(job_.first_cpu) + i) % cpus_.size()];
    auto result = spawner_ ? spawner_->spawn(req, job_.cwd) : spawn_rank(req);
    if (feed[0] >= 0) ::close(feed[0]);
    if (rank.rank == 0 && job_.stdin_mode == "fd") ::close(3);
    if (auto* e = std::get_if<SpawnError>(&result)) {
      if (feed[1] >= 0) ::close(feed[1]);
      link_->send(LinkOp::spawn_failed, {std::to_string(rank.rank), e->what});
      return false;
    }
    if (feed[1] >= 0)
      stdin_ = std::make_shared<StdinFeed>(io_, feed[1], [this](std::size_t n) {
        link_->send(LinkOp::stdin_ack, {std::to_string(n)});
      });
    auto& child = std::get<SpawnedRank>(result);
    rank.pid = child.pid;
    by_pid_[child.pid] = i;
    rank.running = true;
    ++running_;
    link_->send(LinkOp::started, {std::to_string(rank.rank), std::to_string(child.pid)});
    std::string prefix = job_.tag_output ? "[" + std::to_string(rank.rank) + "] " : "";
    auto closed = [this] {
      --open_streams_;
      maybe_done();
    };
    rank.out = std::make_shared<RankOutput>(io_, child.out_fd, out_sink_, prefix, closed);
    rank.err = std::make_shared<RankOutput>(io_, child.err_fd, err_sink_, prefix, closed);
    rank.err->divert(dump_mark(), [this, r = rank.rank](std::string_view line) {
      link_->send(LinkOp::dump_line, {std::to_string(r), std::string(line)});
    });
    open_streams_ += 2;
    rank.out->start();
    rank.err->start();
    return true;
  }

  void wait_signals() {
    signals_.async_wait([this](asio::error_code ec, int sig) {
      if (ec || finished_) return;
      if (sig == SIGCHLD)
        reap();
      else
        stop_all("agent got " + std::string(::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "a signal"));
      if (!finished_) wait_signals();
    });
  }

  // Every child of the agent is a rank: waitpid(-1) finds the ones that ended
  // without looking at the others (SIGCHLDs merge; a scan of every rank per signal
  // made ending N ranks cost N^2).
  void reap() {
    for (;;) {
      int status = 0;
      pid_t got = ::waitpid(-1, &status, WNOHANG);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      auto it = by_pid_.find(got);
      if (it == by_pid_.end()) continue;
      auto& rank = ranks_[it->second];
      by_pid_.erase(it);
      if (!rank.running) continue;
      rank.running = false;
      --running_;
      rank.out->drain_available();
      rank.err->drain_available();
      if (!stopping_) link_->send(LinkOp::exited, {std::to_string(rank.rank), std::to_string(status)});
    }
    maybe_done();
  }

  void signal_ranks(int sig) {
    if (sig == SIGSTOP) link_->pause_watchdog(true);  // ipcrun stops itself next
    if (sig == SIGCONT) link_->pause_watchdog(false);
    for (auto& rank : ranks_) {
      if (!rank.running) continue;
      // SIGUSR1 and SIGUSR2 are for the rank itself (a program's "checkpoint now"), not
      // for what it runs; the others for its whole group, as a terminal's signals are.
      bool user = sig == SIGUSR1 || sig == SIGUSR2;
      if (user || ::killpg(rank.pid, sig) != 0) ::kill(rank.pid, sig);
      // A stopped rank acts on a signal that ends it only once continued (SIGUSR1 and
      // SIGUSR2 wait for the job's own SIGCONT, as they would in a shell's job).
      bool ends = sig != SIGSTOP && sig != SIGCONT && sig != SIGKILL && sig != SIGUSR1 && sig != SIGUSR2;
      if (ends && ::killpg(rank.pid, SIGCONT) != 0) ::kill(rank.pid, SIGCONT);
    }
  }

  /// The job is over for this host without ipcrun's say-so (or by its quit): every
  /// rank's group dies now; the agent exits once they are reaped.
  void stop_all(const std::string& why) {
    if (!why.empty() && !stopping_ && running_ > 0) agent_say(why + ": killing " + std::to_string(running_) + " rank" +
                                                              (running_ == 1 ? "" : "s") + " on " + job_.node);
    stopping_ = true;
    // Every rank's group, ended ranks' too: what a rank started outlives it there.
    for (auto& rank : ranks_)
      if (rank.pid > 0 && ::killpg(rank.pid, SIGKILL) != 0 && rank.running) ::kill(rank.pid, SIGKILL);
    if (!started_ || running_ == 0) return exit_now(why.empty() ? 0 : 1);
    // Bounded: a rank in uninterruptible sleep must not keep the agent.
    deadline_.expires_after(std::chrono::seconds(5));
    deadline_.async_wait([this](asio::error_code ec) {
      if (!ec) exit_now(1);
    });
  }

  void lost(const std::string& why) { stop_all(why); }

  void maybe_done() {
    if (!started_ || running_ > 0 || finished_) return;
    if (stopping_) return exit_now(1);
    if (open_streams_ > 0) {
      if (lingering_) return;
      lingering_ = true;  // a descendant of a rank holds a pipe: do not wait for it long
      linger_.expires_after(kLinger);
      linger_.async_wait([this](asio::error_code ec) {
        if (!ec) finish_job();
      });
      return;
    }
    finish_job();
  }

  void finish_job() {
    if (finished_ || finishing_) return;
    for (auto& rank : ranks_) {
      if (rank.out) rank.out->close();
      if (rank.err) rank.err->close();
    }
    link_->send(LinkOp::done);
    // Everything out before exiting, however long a slow reader of ipcrun's output
    // makes that take (a link that fails ends the wait).
    finishing_ = true;
    link_->when_flushed([this] { exit_now(0); });
  }

  void exit_now(int status) {
    if (finished_) return;
    finished_ = true;
    status_ = status;
    if (!job_.job_id.empty()) {
      // What ranks that died during start-up left (the ranks unlink their segments
      // once mapped); only this host's ranks': other hosts may share /dev/shm.
      for (auto& rank : ranks_) ::shm_unlink(base::segment_name(job_.job_id, rank.rank).c_str());
      if (ranks_.size() == static_cast<std::size_t>(job_.size))
        ::shm_unlink(base::group_segment_name(job_.job_id).c_str());
    }
    if (kv_) kv_->stop();
    if (stdin_) stdin_->close();
    asio::error_code ignored;
    signals_.cancel(ignored);
    linger_.cancel();
    deadline_.cancel();
    link_->close();
    io_.stop();
  }

  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer linger_;
  asio::steady_timer deadline_;
  std::unique_ptr<Spawner> spawner_;
  std::shared_ptr<Link> link_;
  LinkSink out_sink_{link_, "1"};
  LinkSink err_sink_{link_, "2"};
  std::unique_ptr<KvServer> kv_;
  std::shared_ptr<StdinFeed> stdin_;
  AgentJob job_;
  std::vector<std::string> base_env_;
  std::vector<int> cpus_;
  std::vector<Rank> ranks_;
  std::unordered_map<pid_t, std::size_t> by_pid_;  // ranks not yet reaped
  int dev_null_ = -1;
  int running_ = 0;
  int open_streams_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool lingering_ = false;
  bool finishing_ = false;  // done sent, waiting for the link to take it
  bool finished_ = false;
  int status_ = 0;
};

}  // namespace

int run_agent() {
  ::signal(SIGPIPE, SIG_IGN);
  // The link is descriptors 0 and 1; they move out of the way so that nothing
  // written to stdout by mistake can garble it.
  int in = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 4);
  int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 4);
  if (in < 0 || out < 0) {
    agent_say(std::string("cannot set up the link: ") + std::strerror(errno));
    return 1;
  }
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    if (null > 2) ::close(null);
  }
  // The helper that starts the ranks, made while the agent holds few descriptors.
  auto spawner = Spawner::start();
  try {
    Agent agent(in, out, std::move(spawner));
    return agent.run();
  } catch (const std::exception& e) {
    agent_say(e.what());
    return 1;
  }
}

}  // namespace ipc::launcher
