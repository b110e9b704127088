#include "spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ipc::launcher {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string default_path() {
  std::size_t n = ::confstr(_CS_PATH, nullptr, 0);
  if (n == 0) return "/usr/bin:/bin";
  std::string s(n, '\0');
  ::confstr(_CS_PATH, s.data(), n);
  s.resize(n - 1);
  return s;
}

// ipcrun's soft descriptor limit as it was given, restored in the ranks.
rlimit g_original_nofile{};
bool g_nofile_raised = false;

// What the child reports through the close-on-exec pipe when a step fails.
enum class Step : int { setpgid = 1, pdeathsig, stdio, exec, affinity };
struct ChildError {
  Step step;
  int err;
};

const char* step_name(Step s) {
  switch (s) {
    case Step::setpgid: return "setpgid";
    case Step::pdeathsig: return "prctl(PR_SET_PDEATHSIG)";
    case Step::stdio: return "dup2";
    case Step::exec: return "execve";
    case Step::affinity: return "sched_setaffinity";
  }
  return "start";
}

// The child between fork and exec: async-signal-safe calls only.
[[noreturn]] void run_child(const char* path, char* const* argv, char* const* envp, int stdin_fd, int out_fd,
                            int err_fd, int report_fd, pid_t parent, int max_fd, const cpu_set_t* cpus,
                            int death_signal, int extra_fd) {
  auto fail = [&report_fd](Step step) {
    ChildError e{step, errno};
    ssize_t ignored = ::write(report_fd, &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  };
  if (::setpgid(0, 0) != 0) fail(Step::setpgid);
  if (death_signal != 0 && ::prctl(PR_SET_PDEATHSIG, death_signal) != 0) fail(Step::pdeathsig);
  if (::getppid() != parent) ::_exit(127);  // ipcrun died before the line above
  if (cpus && ::sched_setaffinity(0, sizeof(cpu_set_t), cpus) != 0) fail(Step::affinity);
  if (stdin_fd != STDIN_FILENO && ::dup2(stdin_fd, STDIN_FILENO) < 0) fail(Step::stdio);
  if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) fail(Step::stdio);
  unsigned first_closed = 3;
  if (extra_fd >= 0) {
    if (report_fd == 3) report_fd = ::fcntl(3, F_DUPFD_CLOEXEC, 4);  // out of descriptor 3's way
    if (extra_fd == 3 ? ::fcntl(3, F_SETFD, 0) != 0 : ::dup2(extra_fd, 3) < 0) fail(Step::stdio);
    first_closed = 4;
  }
  if (g_nofile_raised) ::setrlimit(RLIMIT_NOFILE, &g_original_nofile);

  // Every descriptor above 2 (3 when passed on) closes at exec (the report pipe too,
  // which tells the parent the exec worked).
  if (::syscall(SYS_close_range, first_closed, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = static_cast<int>(first_closed); fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (::sigaction(sig, &dfl, nullptr) == 0 || sig == SIGKILL || sig == SIGSTOP) continue;
    // glibc keeps two real-time signals for itself and refuses to touch them; an
    // ignored disposition inherited from ipcrun's parent would reach the program.
    struct {
      void* handler;
      unsigned long flags;
      void* restorer;
      unsigned long mask;
    } kernel_dfl{nullptr, 0, nullptr, 0};  // SIG_DFL, no flags, empty mask
    ::syscall(SYS_rt_sigaction, sig, &kernel_dfl, nullptr, sizeof(unsigned long));
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::execve(path, argv, envp);
  fail(Step::exec);
  ::_exit(127);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IPC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define IPC_SANITIZED 1
#endif
#endif
#ifndef IPC_SANITIZED
#define IPC_SANITIZED 0
#endif

// The stack the child runs on until it execs (it calls a few system calls only).
constexpr std::size_t kChildStack = 64 * 1024;

struct ChildArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  int stdin_fd, out_fd, err_fd, report_fd;
  pid_t parent;
  int max_fd;
  const cpu_set_t* cpus;
  int death_signal;
  int extra_fd;
};

int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  run_child(a->path, a->argv, a->envp, a->stdin_fd, a->out_fd, a->err_fd, a->report_fd, a->parent, a->max_fd,
            a->cpus, a->death_signal, a->extra_fd);
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void close_all(std::initializer_list<int> fds) {
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
}

}  // namespace

std::variant<std::string, ProgramError> resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(name.c_str(), &st) != 0) return ProgramError{127, "program '" + name + "' not found"};
    if (!S_ISREG(st.st_mode) || ::access(name.c_str(), X_OK) != 0)
      return ProgramError{126, "program '" + name + "' is not executable"};
    return name;
  }
  if (name.empty()) return ProgramError{127, "program '' not found"};
  const char* env = std::getenv("PATH");
  std::string path = env ? env : default_path();
  std::string not_executable;
  std::size_t begin = 0;
  for (;;) {
    auto end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    struct stat st {};
    if (not_executable.empty() && ::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      not_executable = candidate;
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  if (!not_executable.empty())
    return ProgramError{126, "program '" + name + "' (" + not_executable + " in PATH) is not executable"};
  return ProgramError{127, "program '" + name + "' not found in PATH"};
}

void raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  g_original_nofile = lim;
  lim.rlim_cur = lim.rlim_max;
  g_nofile_raised = ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

std::optional<std::string> descriptor_shortage(long ranks) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return std::nullopt;
  long need = ranks * kDescriptorsPerRank + kDescriptorsBesides;
  if (static_cast<rlim_t>(need) <= lim.rlim_cur) return std::nullopt;
  return "-n " + std::to_string(ranks) + " needs about " + std::to_string(need) + " open files (" +
         std::to_string(kDescriptorsPerRank) + " a rank), but ipcrun may open " + std::to_string(lim.rlim_cur) +
         " (ulimit -n, hard limit " +
         (lim.rlim_max == RLIM_INFINITY ? std::string("unlimited") : std::to_string(lim.rlim_max)) +
         "): raise the limit (ulimit -Hn, /etc/security/limits.conf) or start fewer ranks";
}

std::variant<SpawnedRank, SpawnError> spawn_rank(const SpawnRequest& req) {
  auto argv = c_strings(req.argv);
  auto envp = c_strings(req.env);
  rlimit lim{};
  int max_fd = 1 << 16;  // for the fallback of close_range (kernels before 5.11)
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    max_fd = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));

  int out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    SpawnError e{std::string("pipe: ") + std::strerror(errno)};
    close_all({out[0], out[1], err[0], err[1], report[0], report[1]});
    return e;
  }

  // Signals stay blocked across fork so that no handler of ipcrun's (Asio's signal
  // pipe) runs in the child before it has reset them.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (req.cpu >= 0) CPU_SET(req.cpu, &cpus);
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  // The child shares ipcrun's memory until it execs (CLONE_VM | CLONE_VFORK, as
  // posix_spawn does), so that starting a rank does not copy ipcrun's page tables:
  // with fork, whose cost grows with ipcrun's memory, which grows with the ranks,
  // starting N ranks took time growing with N² (1,000 ranks: 3.4 s). The child runs
  // on a stack of its own and makes only system calls; ipcrun waits meanwhile.
  ChildArgs args{req.path.c_str(), argv.data(), envp.data(), req.stdin_fd, out[1], err[1], report[1],
                 ::getpid(), max_fd, req.cpu >= 0 ? &cpus : nullptr, req.death_signal, req.extra_fd};
  int saved_errno = errno;
#if IPC_SANITIZED
  // The sanitizers' run-time cannot follow a child onto a stack of its own: fork.
  pid_t pid = ::fork();
  if (pid == 0) child_main(&args);
#else
  static thread_local std::vector<std::byte> stack(kChildStack);
  pid_t pid = ::clone(&child_main, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
#endif
  int fork_errno = errno;
  errno = saved_errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close_all({out[1], err[1], report[1]});
  if (pid < 0) {
    close_all({out[0], err[0], report[0]});
    return SpawnError{std::string("clone: ") + std::strerror(fork_errno)};
  }
  ::setpgid(pid, pid);  // also here, so that no signal to the group can miss it; fails after exec

  ChildError failure{};
  ssize_t n;
  do {
    n = ::read(report[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n != static_cast<ssize_t>(sizeof failure)) return SpawnedRank{pid, out[0], err[0]};  // exec worked

  // The child failed before or at exec and has exited (or is about to): reap it.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  close_all({out[0], err[0]});
  std::string what = step_name(failure.step);
  if (failure.step == Step::exec) what += " " + req.path;
  return SpawnError{what + ": " + std::strerror(failure.err)};
}

std::vector<int> usable_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

}  // namespace ipc::launcher
