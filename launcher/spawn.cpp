#include "spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "wire/kv_protocol.hpp"

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

namespace {

/// Clones a child that execs `req` with `out_w` and `err_w` as its stdout and stderr,
/// and waits until the exec has succeeded or failed. `sibling`: the child is made a
/// child of this process's parent (`parent`), which reaps it, failed or not.
/// Returns the pid, or the error text.
std::variant<pid_t, std::string> launch(const SpawnRequest& req, int out_w, int err_w, pid_t parent, bool sibling) {
  auto argv = c_strings(req.argv);
  auto envp = c_strings(req.env);
  rlimit lim{};
  int max_fd = 1 << 16;  // for the fallback of close_range (kernels before 5.11)
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    max_fd = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
  int report[2] = {-1, -1};
  if (::pipe2(report, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);

  // Signals stay blocked across fork so that no handler of ipcrun's (Asio's signal
  // pipe) runs in the child before it has reset them.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (req.cpu >= 0) CPU_SET(req.cpu, &cpus);
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  // The child shares our memory until it execs (CLONE_VM | CLONE_VFORK, as
  // posix_spawn does), so that starting a rank does not copy our page tables:
  // with fork, whose cost grows with the parent's memory, which grows with the ranks,
  // starting N ranks took time growing with N² (1,000 ranks: 3.4 s). The child runs
  // on a stack of its own and makes only system calls; we wait meanwhile.
  ChildArgs args{req.path.c_str(), argv.data(), envp.data(), req.stdin_fd, out_w, err_w, report[1],
                 parent, max_fd, req.cpu >= 0 ? &cpus : nullptr, req.death_signal, req.extra_fd};
  int saved_errno = errno;
  int flags = SIGCHLD | (sibling ? CLONE_PARENT : 0);
#if IPC_SANITIZED
  // The sanitizers' run-time cannot follow a child onto a stack of its own: fork.
  pid_t pid = sibling ? static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0)) : ::fork();
  if (pid == 0) child_main(&args);
#else
  static thread_local std::vector<std::byte> stack(kChildStack);
  pid_t pid = ::clone(&child_main, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | flags, &args);
#endif
  int fork_errno = errno;
  errno = saved_errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(report[1]);
  if (pid < 0) {
    ::close(report[0]);
    return std::string("clone: ") + std::strerror(fork_errno);
  }
  if (!sibling) ::setpgid(pid, pid);  // also here, so that no signal to the group can miss it; fails after exec

  ChildError failure{};
  ssize_t n;
  do {
    n = ::read(report[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n != static_cast<ssize_t>(sizeof failure)) return pid;  // exec worked

  // The child failed before or at exec and has exited (or is about to): reap it,
  // unless it is our parent's to reap.
  if (!sibling) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::string what = step_name(failure.step);
  if (failure.step == Step::exec) what += " " + req.path;
  return what + ": " + std::strerror(failure.err);
}

}  // namespace

std::variant<SpawnedRank, SpawnError> spawn_rank(const SpawnRequest& req) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    SpawnError e{std::string("pipe: ") + std::strerror(errno)};
    close_all({out[0], out[1], err[0], err[1]});
    return e;
  }
  auto started = launch(req, out[1], err[1], ::getpid(), false);
  close_all({out[1], err[1]});
  if (auto* e = std::get_if<std::string>(&started)) {
    close_all({out[0], err[0]});
    return SpawnError{*e};
  }
  return SpawnedRank{std::get<pid_t>(started), out[0], err[0]};
}

// ---- Spawner ----
//
// Request: u32 length + SCM_RIGHTS (stdin, stdout, stderr[, extra]), then a frame of
// parts: path, cwd, cpu, death signal, argc, argv..., env... Reply: i32 pid (or -1),
// u32 length, error text.

namespace {

bool write_all(int fd, const void* p, std::size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

constexpr int kMaxFds = 4;

[[noreturn]] void helper_main(int sock, pid_t parent) {
  for (;;) {
    std::uint32_t len = 0;
    iovec iov{&len, sizeof len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
      n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof len)) ::_exit(0);  // the agent is gone or closed the socket
    int fds[kMaxFds] = {-1, -1, -1, -1};
    int nfds = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        nfds = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        std::memcpy(fds, CMSG_DATA(c), sizeof(int) * static_cast<std::size_t>(std::min(nfds, kMaxFds)));
      }
    std::vector<std::byte> body(len);
    if (!read_all(sock, body.data(), len)) ::_exit(0);
    std::uint8_t op = 0;
    std::vector<std::string> parts;
    std::size_t used = 0;
    std::string reply_text;
    pid_t pid = -1;
    wire::KvLimits limits{256u << 20, 1u << 22};
    if (nfds < 3 || wire::decode_frame(body, limits, op, parts, used, nullptr) != wire::KvDecode::ok ||
        parts.size() < 5) {
      reply_text = "spawner: malformed request";
    } else {
      SpawnRequest req;
      req.path = parts[0];
      req.cpu = std::atoi(parts[2].c_str());
      req.death_signal = std::atoi(parts[3].c_str());
      std::size_t argc = std::strtoul(parts[4].c_str(), nullptr, 10);
      if (argc > parts.size() - 5) argc = parts.size() - 5;
      req.argv.assign(parts.begin() + 5, parts.begin() + 5 + static_cast<std::ptrdiff_t>(argc));
      req.env.assign(parts.begin() + 5 + static_cast<std::ptrdiff_t>(argc), parts.end());
      req.stdin_fd = fds[0];
      req.extra_fd = nfds > 3 ? fds[3] : -1;
      if (!parts[1].empty() && ::chdir(parts[1].c_str()) != 0) {
        reply_text = "chdir " + parts[1] + ": " + std::strerror(errno);
      } else {
        auto started = launch(req, fds[1], fds[2], parent, true);
        if (auto* e = std::get_if<std::string>(&started))
          reply_text = *e;
        else
          pid = std::get<pid_t>(started);
      }
    }
    for (int i = 0; i < std::min(nfds, kMaxFds); ++i) ::close(fds[i]);
    std::int32_t head[2] = {pid, static_cast<std::int32_t>(reply_text.size())};
    if (!write_all(sock, head, sizeof head) || !write_all(sock, reply_text.data(), reply_text.size())) ::_exit(0);
  }
}

}  // namespace

std::unique_ptr<Spawner> Spawner::start() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return nullptr;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    close_all({sv[0], sv[1]});
    return nullptr;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    // Nothing of the parent's but the socket and the standard descriptors.
    if (::dup2(sv[1], 3) < 0) ::_exit(1);
    if (::syscall(SYS_close_range, 4u, ~0u, 0) != 0)
      for (int fd = 4; fd < 1024; ++fd) ::close(fd);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    helper_main(3, parent);
  }
  ::close(sv[1]);
  auto s = std::unique_ptr<Spawner>(new Spawner);
  s->sock_ = sv[0];
  s->pid_ = pid;
  return s;
}

Spawner::~Spawner() {
  if (sock_ >= 0) ::close(sock_);  // the helper exits at end of file
}

std::variant<SpawnedRank, SpawnError> Spawner::spawn(const SpawnRequest& req, const std::string& cwd) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    SpawnError e{std::string("pipe: ") + std::strerror(errno)};
    close_all({out[0], out[1], err[0], err[1]});
    return e;
  }
  std::vector<std::string> parts{req.path, cwd, std::to_string(req.cpu), std::to_string(req.death_signal),
                                 std::to_string(req.argv.size())};
  parts.insert(parts.end(), req.argv.begin(), req.argv.end());
  parts.insert(parts.end(), req.env.begin(), req.env.end());
  std::vector<std::byte> body;
  wire::encode_frame(0, parts, body);
  int fds[kMaxFds] = {req.stdin_fd, out[1], err[1], req.extra_fd};
  int nfds = req.extra_fd >= 0 ? 4 : 3;
  std::uint32_t len = static_cast<std::uint32_t>(body.size());
  iovec iov{&len, sizeof len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<std::size_t>(nfds));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<std::size_t>(nfds));
  std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<std::size_t>(nfds));
  ssize_t n;
  do {
    n = ::sendmsg(sock_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  std::int32_t head[2] = {-1, 0};
  bool ok = n == static_cast<ssize_t>(sizeof len) && write_all(sock_, body.data(), body.size()) &&
            read_all(sock_, head, sizeof head);
  std::string text(ok && head[1] > 0 ? static_cast<std::size_t>(head[1]) : 0, '\0');
  ok = ok && read_all(sock_, text.data(), text.size());
  close_all({out[1], err[1]});
  if (!ok || head[0] <= 0) {
    close_all({out[0], err[0]});
    return SpawnError{ok ? text : std::string("the spawning helper is gone")};
  }
  return SpawnedRank{head[0], out[0], err[0]};
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
