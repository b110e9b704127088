#include "job.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "shm_cleanup.hpp"
#include "spawn.hpp"
#include "wire/secret.hpp"

extern char** environ;

namespace ipc::launcher {
namespace {

constexpr auto kLinger = std::chrono::milliseconds(200);

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "unknown signal";
}


/// Sets NAME=VALUE in `env`, replacing an earlier NAME.
void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::string prefix = name + "=";
  for (auto& e : env) {
    if (e.compare(0, prefix.size(), prefix) == 0) {
      e = prefix + value;
      return;
    }
  }
  env.push_back(prefix + value);
}

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

std::string seconds_text(double s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace


Job::Job(const Options& options, std::string program, double kill_grace, Placement placement)
    : options_(options),
      program_(std::move(program)),
      kill_grace_(kill_grace),
      placement_(std::move(placement)),
      secret_(wire::make_secret()),
      signals_(io_, SIGCHLD, SIGINT, SIGTERM),
      timeout_timer_(io_),
      grace_timer_(io_),
      linger_timer_(io_),
      ranks_(static_cast<std::size_t>(options.np)) {
  job_id_ = make_job_id();
  // Binding: one CPU per rank, in the order ipcrun may use them, when they fit
  // (a rank that keeps its core never finds its peer parked on the same one).
  auto cpus = usable_cpus();
  bool bind = options.bind_to == "core" || (options.bind_to == "auto" && !cpus.empty() &&
                                            static_cast<std::size_t>(options.np) <= cpus.size());
  if (bind && !cpus.empty()) cpus_ = cpus;
}

Job::~Job() {
  if (dev_null_ >= 0) ::close(dev_null_);
  remove_job_segments(job_id_);  // what ranks that died during start-up left
}

int Job::run() {
  remove_stale_segments(false);  // left by jobs whose ipcrun was killed
  signals_.add(SIGTSTP);
  signals_.add(SIGCONT);
  wait_signals();  // from here on SIGCHLD, SIGINT, SIGTERM, SIGTSTP and SIGCONT queue up for the loop

  try {
    KvServer::Hooks hooks;
    // A rank stopped during its start-up drops its bootstrap connection half-way:
    // once the job is stopping, that is a consequence, not news.
    hooks.log = [this](const std::string& text) {
      if (stop_ == Stop::none) say(text);
    };
    kv_ = std::make_unique<KvServer>(io_, secret_, options_.np,
                                     asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), hooks);
  } catch (const std::system_error& e) {
    throw std::runtime_error(std::string("cannot start the bootstrap server on 127.0.0.1: ") + e.what());
  }

  // The environment every rank shares: ipcrun's own, then -x, then the options
  // with an environment equivalent, then the job's contract (later entries win).
  for (char** e = environ; *e; ++e) base_env_.emplace_back(*e);
  for (const auto& x : resolve_exports(options_.exports)) set_env(base_env_, x.name, x.value);
  if (options_.transports) set_env(base_env_, "IPC_TRANSPORTS", *options_.transports);
  if (options_.report_transports) set_env(base_env_, "IPC_REPORT_TRANSPORTS", "1");
  if (options_.iface) set_env(base_env_, "IPC_TCP_IFACE", *options_.iface);
  if (options_.port_range) set_env(base_env_, "IPC_TCP_PORTS", *options_.port_range);
  set_env(base_env_, "IPC_SIZE", std::to_string(options_.np));
  set_env(base_env_, "IPC_JOB", job_id_);
  set_env(base_env_, "IPC_BOOTSTRAP", "127.0.0.1:" + std::to_string(kv_->port()));
  set_env(base_env_, "IPC_JOB_SECRET", wire::to_hex(secret_));
  set_env(base_env_, "IPC_TCP_ADDR", "127.0.0.1");

  dev_null_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (::isatty(STDIN_FILENO)) {
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

  if (options_.display_map)
    for (auto& line : placement_.map_lines()) stderr_sink().write("[ipcrun] " + line + "\n");
  for (int r = 0; r < options_.np; ++r)
    if (!spawn(r)) break;
  if (stdin_fd_ != STDIN_FILENO && stdin_fd_ != dev_null_) ::close(stdin_fd_);
  if (stdin_relay_) stdin_relay_->start();
  if (running_ == 0) all_ranks_ended();

  io_.run();
  if (timed_out_) return 124;
  return first_status_.value_or(0);
}

std::vector<std::string> Job::environment_for(int rank) const {
  // The node is the host as placed, never gethostname(): every host of this version is
  // this one, and ranks placed on two names of it run as two nodes.
  auto env = base_env_;
  auto r = static_cast<std::size_t>(rank);
  set_env(env, "IPC_RANK", std::to_string(rank));
  set_env(env, "IPC_LOCAL_RANK", std::to_string(placement_.local_rank[r]));
  set_env(env, "IPC_LOCAL_SIZE",
          std::to_string(placement_.local_size[static_cast<std::size_t>(placement_.host_of[r])]));
  set_env(env, "IPC_NODE", node_of(rank));
  return env;
}

bool Job::spawn(int r) {
  SpawnRequest req;
  req.path = program_;
  req.argv = options_.command;
  req.env = environment_for(r);
  req.stdin_fd = r == 0 ? stdin_fd_ : dev_null_;
  if (!cpus_.empty()) req.cpu = cpus_[static_cast<std::size_t>(r) % cpus_.size()];
  auto result = spawn_rank(req);
  if (auto* e = std::get_if<SpawnError>(&result)) {
    say("cannot start rank " + std::to_string(r) + " on " + node_of(r) + ": " + e->what + stopping(running_));
    if (!first_status_) first_status_ = 127;
    stop(Stop::spawn, SIGTERM);
    return false;
  }
  auto& child = std::get<SpawnedRank>(result);
  auto& rank = ranks_[static_cast<std::size_t>(r)];
  rank.pid = child.pid;
  rank.running = true;
  ++running_;
  std::string prefix = options_.tag_output ? "[" + std::to_string(r) + "] " : "";
  auto closed = [this] { stream_closed(); };
  rank.out = std::make_shared<RankOutput>(io_, child.out_fd, stdout_sink(), prefix, closed);
  rank.err = std::make_shared<RankOutput>(io_, child.err_fd, stderr_sink(), prefix, closed);
  open_streams_ += 2;
  rank.out->start();
  rank.err->start();
  return true;
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
    else
      interrupted(sig);
    if (!finished_) wait_signals();
  });
}

void Job::reap() {
  // SIGCHLDs merge: look at every rank still running.
  for (std::size_t r = 0; r < ranks_.size(); ++r) {
    auto& rank = ranks_[r];
    if (!rank.running) continue;
    int status = 0;
    pid_t got;
    do {
      got = ::waitpid(rank.pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == rank.pid || (got < 0 && errno == ECHILD)) rank_ended(static_cast<int>(r), got < 0 ? 0 : status);
    if (finished_) return;
  }
}

void Job::rank_ended(int r, int status) {
  auto& rank = ranks_[static_cast<std::size_t>(r)];
  rank.running = false;
  --running_;
  if (kv_) kv_->rank_gone(r);
  // Its last output first, then what ipcrun has to say about it.
  rank.out->drain_available();
  rank.err->drain_available();

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
  if (running_ == 0) all_ranks_ended();
}

void Job::all_ranks_ended() {
  timeout_timer_.cancel();
  grace_timer_.cancel();
  if (stdin_relay_) stdin_relay_->close();
  if (open_streams_ == 0) {
    finish();
    return;
  }
  // A descendant of a rank may hold its pipes open: do not wait for it long.
  linger_timer_.expires_after(kLinger);
  linger_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) finish();
  });
}

void Job::stream_closed() {
  --open_streams_;
  if (running_ == 0 && open_streams_ == 0) finish();
}

void Job::interrupted(int sig) {
  if (running_ == 0) {
    finish();  // only lingering output left
    return;
  }
  if (stop_ == Stop::none) {
    say("interrupted by " + signal_name(sig) + stopping(running_));
    stop_ = Stop::interrupt;
    signal_ranks(sig);  // the ranks decide what it means; a second signal kills
    return;
  }
  say("interrupted by " + signal_name(sig) + (stop_ == Stop::interrupt ? " again" : "") + "; killing " +
      std::to_string(running_) + (running_ == 1 ? " rank" : " ranks"));
  signal_ranks(SIGKILL);
}

// Job control: the ranks lead their own process groups, out of the terminal's
// foreground group, so a Ctrl-Z reaches ipcrun alone. It stops the ranks first (their
// whole groups, with the uncatchable SIGSTOP: a rank that handled SIGTSTP would keep
// running), then itself with SIGTSTP's default action, which hands the terminal back
// to the shell; the kernel discards that for an orphaned process group (nobody would
// ever continue it), and then the job simply goes on. The SIGCONT that continues
// ipcrun (fg, bg) is passed on to the ranks as well.
void Job::suspend() {
  signal_ranks(SIGSTOP);
  struct sigaction dfl {}, ours {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGTSTP, &dfl, &ours);
  ::raise(SIGTSTP);  // returns once continued, or at once when discarded
  ::sigaction(SIGTSTP, &ours, nullptr);
  signal_ranks(SIGCONT);
}

void Job::timed_out() {
  if (running_ == 0 || (stop_ != Stop::none && stop_ != Stop::interrupt)) return;
  say("job timed out after " + seconds_text(*options_.timeout) + " s" + stopping(running_));
  timed_out_ = true;
  stop(Stop::timeout, SIGTERM);
}

void Job::stop(Stop reason, int sig) {
  stop_ = reason;
  if (running_ == 0) return;
  signal_ranks(sig);
  grace_timer_.expires_after(seconds(kill_grace_));
  grace_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) signal_ranks(SIGKILL);
  });
}

void Job::signal_ranks(int sig) {
  for (auto& rank : ranks_) {
    if (!rank.running) continue;
    // The rank leads its own group; if it left it, reach the rank itself.
    if (::killpg(rank.pid, sig) != 0) ::kill(rank.pid, sig);
    // A stopped rank (Ctrl-Z) acts on a signal only once continued.
    if (sig != SIGSTOP && sig != SIGCONT && sig != SIGKILL && ::killpg(rank.pid, SIGCONT) != 0)
      ::kill(rank.pid, SIGCONT);
  }
}

void Job::finish() {
  if (finished_) return;
  finished_ = true;
  timeout_timer_.cancel();
  grace_timer_.cancel();
  linger_timer_.cancel();
  asio::error_code ignored;
  signals_.cancel(ignored);
  for (auto& rank : ranks_) {
    if (rank.out) rank.out->close();
    if (rank.err) rank.err->close();
  }
  if (stdin_relay_) stdin_relay_->close();
  if (kv_) kv_->stop();
  io_.stop();
}

std::string Job::stopping(int count) const {
  if (count == 0) return "";
  return "; stopping " + std::to_string(count) + (count == 1 ? " rank" : " ranks");
}

}  // namespace ipc::launcher
