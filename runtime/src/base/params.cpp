#include "base/params.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "base/check.hpp"
#include "base/errors.hpp"

namespace ipc::base {
namespace {

constexpr Param kParams[] = {  // the job's; collectives and transports declare their own (*/params.cpp)
    {"IPC_TRANSPORTS", IPC_DEFAULT_TRANSPORTS, "transports a rank may use, in order of preference (self is always on; mpi only under mpirun or srun)"},
    {"IPC_REPORT_TRANSPORTS", "0", "print the transport chosen for every ordered pair of ranks at start-up"},
    {"IPC_WAIT_SPIN_US", "50", "a blocked call busy-polls this long before it starts yielding the CPU"},
    {"IPC_WAIT_YIELD_US", "2000", "then polls with sched_yield() between polls this long before it sleeps"},
    {"IPC_OVERSUBSCRIBED", "auto", "yield from the first poll on: auto (when ranks on the node outnumber its CPUs), 1 or 0"},
    {"IPC_PROGRESS_THREAD", "1", "run a background progress thread (keeps TCP moving while the program computes)"},
    {"IPC_MAX_MESSAGE", "1099511627776", "largest message accepted off the wire, in bytes"},
    {"IPC_ENGINES", "", "the engines module (libipc-engines.so: PMIx and MPI) a rank started by mpirun or srun loads; empty: found through the program's run path (the build's lib/ or the installation's lib/ipc/)"},
    {"IPC_BOOTSTRAP_TIMEOUT", "120", "seconds a rank waits for the bootstrap server (connect, get) and for the other ranks at start-up (then ipc::Timeout)"},
    {"IPC_RPC_DEFINE_WAIT", "10", "seconds a call to a procedure not yet defined on its rank waits there for the definition (then ipc::CallRefused)"},
    {"IPC_LOST_PEER_GRACE", "0.5", "seconds a rank dying of an uncaught ipc::PeerLost waits first, so that the launcher reports the rank that failed first"},
    {"IPC_KILL_GRACE", "1", "ipcrun: seconds between SIGTERM and SIGKILL when stopping ranks"},
    {"IPC_LAUNCH_AGENT", "ssh", "ipcrun: command that runs its agent on another host (--launch-agent)"},
    {"IPC_LAUNCH_TIMEOUT", "30", "ipcrun: seconds every host's agent has to answer (--launch-timeout)"},
    {"IPC_LINK_TIMEOUT", "10", "ipcrun: seconds of silence after which a host's agent counts as lost (both ways)"},
    {"IPC_DUMP_WAIT", "2", "ipcrun: seconds a dump (ipcrun --dump, SIGQUIT, --timeout) waits for the ranks' reports"},
};

const Param& find(std::string_view name) {
  for (const ParamTable& t : param_tables())
    for (auto& p : t)
      if (name == p.name) return p;
  IPC_ENFORCE(false, "parameter " + std::string(name) + " is read but declared in no table");
  std::abort();  // not reached
}

}  // namespace

extern const ParamTable job_params;
const ParamTable job_params = kParams;

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (const ParamTable& t : param_tables()) out.insert(out.end(), t.begin(), t.end());
  return out;
}

std::string param(std::string_view name) {
  const Param& p = find(name);
  if (const char* v = std::getenv(p.name)) return v;
  return p.fallback;
}

std::int64_t param_int(std::string_view name) {
  std::string v = param(name);
  try {
    std::size_t used = 0;
    auto n = std::stoll(v, &used, 0);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw UsageError(std::string(name) + "='" + v + "' is not an integer");
}

bool param_bool(std::string_view name) {
  std::string v = param(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  throw UsageError(std::string(name) + "='" + v + "' is not a boolean (use 1 or 0)");
}

double param_seconds(std::string_view name) {
  std::string v = param(name);
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used == v.size() && d >= 0) return d;
  } catch (const std::exception&) {
  }
  throw UsageError(std::string(name) + "='" + v + "' is not a number of seconds");
}

}  // namespace ipc::base
