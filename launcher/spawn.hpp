// Finding the program and starting a process on this host: a rank (by its host's
// agent, agent.hpp) or an agent (by ipcrun: itself, or the launch agent for another
// host).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ipc::launcher {

/// Why a program cannot be run: the message (without "ipcrun: ") and the exit
/// status, 127 when it does not exist, 126 when it exists but cannot be run.
struct ProgramError {
  int status;
  std::string message;
};

/// The path to exec for `name`: a name containing '/' is taken as it is and must
/// be an executable file; any other name is searched for in PATH, as a shell does.
std::variant<std::string, ProgramError> resolve_program(const std::string& name);

struct SpawnRequest {
  std::string path;               // what resolve_program() returned
  std::vector<std::string> argv;  // argv[0] is the name as the user gave it
  std::vector<std::string> env;   // the complete environment, "NAME=VALUE"
  int stdin_fd = 0;               // becomes the rank's descriptor 0
  int cpu = -1;                   // pin the rank to this CPU (-1: leave the affinity alone)
  int death_signal = 9;           // sent to the child when its parent dies (SIGKILL; 0: none)
  int extra_fd = -1;              // becomes the child's descriptor 3 (-1: none)
};

/// The CPUs ipcrun may run on (its affinity mask), in order.
std::vector<int> usable_cpus();

struct SpawnedRank {
  pid_t pid = -1;  // also the id of the rank's own process group
  int out_fd = -1; // read ends of the rank's stdout and stderr pipes (close-on-exec)
  int err_fd = -1;
};

/// A rank that did not start: `what` names the failed step and the errno text
/// ("execve ./prog: Permission denied"). Nothing is left behind (the child, if
/// one was forked, has been reaped).
struct SpawnError {
  std::string what;
};

/// Raises ipcrun's soft limit of open descriptors to the hard limit (each rank
/// costs ipcrun two pipes); the ranks get the original limit back.
void raise_descriptor_limit();

/// What ipcrun holds open per rank (its stdout and stderr pipes, its bootstrap
/// connection) and besides them (epoll, signals, the bootstrap server, stdin...).
inline constexpr long kDescriptorsPerRank = 3;
inline constexpr long kDescriptorsBesides = 64;
/// Null when a job of `ranks` ranks fits the open-file limit (as raised); else the
/// one line that says by how much it does not, and what to do.
std::optional<std::string> descriptor_shortage(long ranks);

/// Forks and execs one rank (or a node agent). In the child, before exec: a process
/// group of its own, `death_signal` when its parent dies (PR_SET_PDEATHSIG), default signal dispositions,
/// an empty signal mask, stdin from `stdin_fd`, stdout and stderr into fresh pipes,
/// `extra_fd` as descriptor 3, every other descriptor closed. Returns once the exec has succeeded or failed
/// (the child reports an exec error through a close-on-exec pipe).
std::variant<SpawnedRank, SpawnError> spawn_rank(const SpawnRequest& request);

/// Starts ranks from a helper process that holds no descriptor of its parent's, so
/// that starting the N-th rank costs what starting the first did: every exec closes
/// the starting process's close-on-exec descriptors, and a parent holding 3 a rank
/// made starting N ranks cost N² (4,000 ranks: 3 s). The ranks it starts are its
/// parent's children (CLONE_PARENT): the parent reaps them, and they die with it.
class Spawner {
 public:
  /// Forks the helper; call it while the process holds few descriptors. Null when
  /// the helper cannot be made (then spawn_rank() does the work).
  static std::unique_ptr<Spawner> start();
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  /// As spawn_rank(); the rank starts in `cwd` (the helper's directory when empty).
  /// A rank whose exec failed is left for the caller to reap.
  std::variant<SpawnedRank, SpawnError> spawn(const SpawnRequest& request, const std::string& cwd);

 private:
  Spawner() = default;
  int sock_ = -1;
  pid_t pid_ = -1;
};

}  // namespace ipc::launcher
