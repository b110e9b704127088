#include "bootstrap/bootstrap.hpp"

#include <unistd.h>

#include <cstdlib>
#include <random>

#include "base/errors.hpp"
#include "base/net.hpp"
#include "base/params.hpp"

namespace ipc::bootstrap {
namespace {

const char* env(const char* name) { return std::getenv(name); }

std::string require(const char* name) {
  const char* v = env(name);
  if (!v || !*v) throw BootstrapError(std::string("bootstrap: ") + name + " is not set (IPC_BOOTSTRAP is: the "
                                      "process looks started by ipcrun, but its environment is incomplete)");
  return v;
}

int require_int(const char* name, int lo, int hi) {
  std::string v = require(name);
  try {
    std::size_t used = 0;
    long n = std::stol(v, &used);
    if (used == v.size() && n >= lo && n <= hi) return static_cast<int>(n);
  } catch (const std::exception&) {
  }
  throw BootstrapError(std::string("bootstrap: ") + name + "='" + v + "' is not an integer from " +
                       std::to_string(lo) + " to " + std::to_string(hi));
}


}  // namespace

// An engine's job whose processes cannot learn their places (no PMIx) would run as
// many singletons, each computing alone: refused with what to do instead.
void refuse_engine_without_pmix() {
  auto many = [](const char* var) {
    const char* v = env(var);
    return v && std::atoi(v) > 1;
  };
  std::string who;
  if (many("SLURM_NTASKS") && env("SLURM_PROCID"))
    who = "srun";
  else if (many("OMPI_COMM_WORLD_SIZE") || env("PMIX_NAMESPACE"))
    who = "mpirun";
  if (who.empty()) return;
#if IPC_WITH_PMIX
  throw BootstrapError("bootstrap: this process is one of a job of several ranks, but " +
                       (who == "srun" ? std::string("srun started it without PMIx: run it with srun --mpi=pmix (or "
                                                    "SLURM_MPI_TYPE=pmix)")
                                      : std::string("mpirun started it without PMIx (PMIX_NAMESPACE is not set)")));
#else
  throw BootstrapError("bootstrap: this process is one of a job of several ranks started by " + who +
                       ", but this build of ipc has no PMIx (it was built without libpmix-dev): start the job with "
                       "ipcrun, or build ipc with PMIx (README: Engines)");
#endif
}

JobInfo read_environment() {
  JobInfo j;
#if IPC_WITH_PMIX
  if (!env("IPC_BOOTSTRAP") && under_engine()) return engine_job();
#endif
  if (!env("IPC_BOOTSTRAP")) {
    refuse_engine_without_pmix();
    j.node = net::host_name();
    // Unique on the host even across pid namespaces that share a network namespace
    // (the doorbell's abstract name is per network namespace).
    std::byte random[8];
    wire::random_bytes(random, sizeof random);
    j.job = "singleton-" + std::to_string(::getpid()) + "-" + wire::to_hex(random, sizeof random);
    j.secret = wire::make_secret();
    return j;
  }
  j.singleton = false;
  j.launcher = base::Launcher::ipcrun;
  j.server = require("IPC_BOOTSTRAP");
  j.size = require_int("IPC_SIZE", 1, 1 << 24);
  j.rank = require_int("IPC_RANK", 0, j.size - 1);
  j.local_size = require_int("IPC_LOCAL_SIZE", 1, j.size);
  j.local_rank = require_int("IPC_LOCAL_RANK", 0, j.local_size - 1);
  j.node = require("IPC_NODE");
  j.job = require("IPC_JOB");
  auto secret = wire::secret_from_hex(require("IPC_JOB_SECRET"));
  if (!secret) throw BootstrapError("bootstrap: IPC_JOB_SECRET is not 64 hex digits");
  j.secret = *secret;
  return j;
}

std::unique_ptr<Store> open_store(const JobInfo& job) {
  if (job.singleton) return std::make_unique<MemoryStore>(1);
#if IPC_WITH_PMIX
  if (job.launcher == base::Launcher::engine) return engine_store(job);
#endif
  auto timeout = std::chrono::milliseconds(static_cast<long long>(base::param_seconds("IPC_BOOTSTRAP_TIMEOUT") * 1000));
  return std::make_unique<TcpStore>(job.server, job.secret, job.rank, timeout);
}

}  // namespace ipc::bootstrap
