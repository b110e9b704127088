#include "engine.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "base/errors.hpp"

extern char** environ;

namespace ipc::launcher {
namespace {

[[noreturn]] void cannot(const std::string& option, const std::string& engine) {
  throw UsageError(option + " cannot be used with --engine " + engine);
}

// The names of the hosts --host or --hostfile gives, in order.
std::vector<std::string> host_names(const Options& o) {
  std::vector<Host> hosts;
  if (o.hostfile) hosts = read_hostfile(*o.hostfile);
  if (o.host) hosts = parse_host_list(*o.host);
  std::vector<std::string> names;
  for (auto& h : hosts) names.push_back(h.name);
  return names;
}

pid_t g_child = 0;

// Signals sent to ipcrun by another process go on to the engine; those of the
// terminal (si_pid 0: the kernel's) reach the engine by themselves, in ipcrun's group.
void forward(int sig, siginfo_t* info, void*) {
  if (g_child > 0 && info && info->si_pid != 0) ::kill(g_child, sig);
}

}  // namespace

EngineCommand engine_command(const Options& o) {
  const std::string& engine = o.engine;
  if (o.tls || o.tls_cert || o.tls_key || o.tls_ca) cannot("--tls", engine);
  if (o.launch_agent) cannot("--launch-agent", engine);
  if (o.launch_timeout) cannot("--launch-timeout", engine);
  if (o.keep_going) cannot("--keep-going", engine);
  if (o.hostfile && o.host) throw UsageError("--hostfile and --host cannot be used together");

  EngineCommand c;
  // What the ranks get besides the engine's environment: ipcrun's IPC_* variables,
  // then -x, then the options with an environment equivalent (as ipcrun gives its own).
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "IPC_", 4) == 0) c.environment.emplace_back(*e);
  for (const auto& x : resolve_exports(o.exports)) c.environment.push_back(x.name + "=" + x.value);
  if (o.transports) c.environment.push_back("IPC_TRANSPORTS=" + *o.transports);
  if (o.report_transports) c.environment.push_back("IPC_REPORT_TRANSPORTS=1");
  if (o.iface) c.environment.push_back("IPC_TCP_IFACE=" + *o.iface);
  if (o.port_range) c.environment.push_back("IPC_TCP_PORTS=" + *o.port_range);

  auto& a = c.argv;
  if (engine == "mpirun") {
    a = {"mpirun", "-n", std::to_string(o.np)};
    if (::geteuid() == 0) a.emplace_back("--allow-run-as-root");
    if (o.hostfile) a.insert(a.end(), {"--hostfile", *o.hostfile});
    if (o.host) a.insert(a.end(), {"--host", *o.host});
    if (o.map_by == "node") a.insert(a.end(), {"--map-by", "node"});
    // Without hosts, ipcrun runs any number of ranks on this host: so does mpirun then.
    if (o.oversubscribe || (!o.hostfile && !o.host)) a.emplace_back("--oversubscribe");
    if (o.bind_to != "auto") a.insert(a.end(), {"--bind-to", o.bind_to});
    if (o.display_map) a.emplace_back("--display-map");
    if (o.tag_output) a.emplace_back("--tag-output");
    // mpirun passes on to other hosts only what -x names (values stay off its command line).
    std::vector<std::string> names;
    for (auto& e : c.environment) {
      std::string name = e.substr(0, e.find('='));
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    for (auto& n : names) a.insert(a.end(), {"-x", n});
  } else if (engine == "slurm") {
    if (o.display_map) cannot("--display-map", engine);
    a = {"srun", "-n", std::to_string(o.np), "--mpi=pmix", "--export=ALL"};
    if (o.hostfile || o.host) {
      std::string list;
      for (auto& h : host_names(o)) list += (list.empty() ? "" : ",") + h;
      a.push_back("--nodelist=" + list);
    }
    a.push_back(o.map_by == "node" ? "--distribution=cyclic" : "--distribution=block");
    if (o.oversubscribe) a.emplace_back("--overcommit");
    if (o.bind_to == "core") a.emplace_back("--cpu-bind=cores");
    if (o.bind_to == "none") a.emplace_back("--cpu-bind=none");
    if (o.tag_output) a.emplace_back("--label");
  } else {
    throw UsageError("--engine " + engine + ": expected ipcrun, mpirun or slurm");
  }
  a.insert(a.end(), o.command.begin(), o.command.end());
  return c;
}

int run_engine(const EngineCommand& command, std::optional<double> timeout, double kill_grace) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (auto& e : command.environment) {  // later entries win
    std::string name = e.substr(0, e.find('=') + 1);
    std::erase_if(env, [&](const std::string& x) { return x.compare(0, name.size(), name) == 0; });
    env.push_back(e);
  }
  std::vector<char*> argv, envp;
  for (auto& s : command.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (auto& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &sa, nullptr);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw Error(std::string("cannot make a pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(ready[0]);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) ::signal(sig, SIG_DFL);
    ::execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(ready[1], &e, sizeof e);
    ::_exit(127);
  }
  g_child = pid;
  ::close(ready[1]);
  int exec_errno = 0;
  bool failed = ::read(ready[0], &exec_errno, sizeof exec_errno) == static_cast<ssize_t>(sizeof exec_errno);
  ::close(ready[0]);
  if (failed) {
    ::waitpid(pid, nullptr, 0);
    throw Error("cannot run " + command.argv[0] + " (--engine): " + std::strerror(exec_errno) +
                (exec_errno == ENOENT ? std::string(" (is it installed and on PATH?)") : std::string()));
  }

  using clock = std::chrono::steady_clock;
  auto deadline = timeout ? clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(*timeout))
                          : clock::time_point::max();
  bool timed_out = false;
  clock::time_point killed_at{};
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, timeout ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw Error(std::string("waitpid: ") + std::strerror(errno));
    if (!timeout) continue;
    auto now = clock::now();
    if (!timed_out && now >= deadline) {
      timed_out = true;
      killed_at = now;
      ::kill(pid, SIGTERM);  // the engine stops its ranks
    } else if (timed_out && now - killed_at > std::chrono::duration<double>(kill_grace + 5)) {
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_child = 0;
  if (timed_out) return 124;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::vector<std::string> expand_slurm_nodelist(const std::string& list) {
  auto bad = [&] { return UsageError("SLURM_JOB_NODELIST='" + list + "' is not a Slurm node list"); };
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < list.size()) {
    // One item: a prefix, then optionally [ranges], then maybe more text (node[1-2]a is rare: refused).
    std::size_t start = i;
    while (i < list.size() && list[i] != ',' && list[i] != '[') ++i;
    std::string prefix = list.substr(start, i - start);
    if (i < list.size() && list[i] == '[') {
      std::size_t close = list.find(']', i);
      if (close == std::string::npos || prefix.empty()) throw bad();
      std::string ranges = list.substr(i + 1, close - i - 1);
      i = close + 1;
      if (i < list.size() && list[i] != ',') throw bad();
      std::size_t r = 0;
      while (r <= ranges.size()) {
        std::size_t comma = ranges.find(',', r);
        std::string one = ranges.substr(r, comma == std::string::npos ? std::string::npos : comma - r);
        r = comma == std::string::npos ? ranges.size() + 1 : comma + 1;
        std::size_t dash = one.find('-');
        std::string lo = one.substr(0, dash), hi = dash == std::string::npos ? lo : one.substr(dash + 1);
        if (lo.empty() || hi.empty() || lo.find_first_not_of("0123456789") != std::string::npos ||
            hi.find_first_not_of("0123456789") != std::string::npos || lo.size() > 9 || hi.size() > 9)
          throw bad();
        long a = std::stol(lo), b = std::stol(hi);
        if (b < a || b - a > 100000) throw bad();
        for (long n = a; n <= b; ++n) {
          std::string num = std::to_string(n);
          if (num.size() < lo.size()) num.insert(0, lo.size() - num.size(), '0');  // node[01-10]
          out.push_back(prefix + num);
        }
      }
    } else {
      if (prefix.empty()) throw bad();
      out.push_back(prefix);
    }
    if (i < list.size() && list[i] == ',') ++i;
  }
  if (out.empty()) throw bad();
  return out;
}

std::optional<std::vector<Host>> slurm_allocation() {
  const char* list = std::getenv("SLURM_JOB_NODELIST");
  if (!list || !*list) return std::nullopt;
  auto names = expand_slurm_nodelist(list);
  // SLURM_JOB_CPUS_PER_NODE: "2(x3),1": counts, each for one node or (xN) for N.
  std::vector<int> cpus;
  if (const char* c = std::getenv("SLURM_JOB_CPUS_PER_NODE")) {
    std::string s = c;
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t used = 0;
      int n = std::stoi(s.substr(i), &used);
      i += used;
      int times = 1;
      if (i < s.size() && s[i] == '(') {
        std::size_t close = s.find(')', i);
        if (close == std::string::npos || s[i + 1] != 'x') break;
        times = std::stoi(s.substr(i + 2, close - i - 2));
        i = close + 1;
      }
      for (int k = 0; k < times; ++k) cpus.push_back(n);
      if (i < s.size() && s[i] == ',') ++i;
    }
  }
  std::vector<Host> hosts;
  for (std::size_t k = 0; k < names.size(); ++k) {
    Host h;
    h.name = names[k];
    if (k < cpus.size()) h.slots = cpus[k];
    hosts.push_back(h);
  }
  return hosts;
}

}  // namespace ipc::launcher
