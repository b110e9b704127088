// `ipcrun --engine mpirun|slurm`: ipcrun's command line handed to Open MPI's mpirun or
// to Slurm's srun, which place and start the ranks; the ranks learn their job through
// PMIx (runtime/src/bootstrap/pmix.cpp). ipcrun stays as the engine's parent: it
// forwards the signals sent to it, enforces --timeout (status 124) and returns the
// engine's status.
//
// And inside a Slurm allocation (SLURM_JOB_NODELIST set) without --host or --hostfile,
// ipcrun's own engine runs on the allocation's nodes with its CPUs as slots.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hostfile.hpp"
#include "options.hpp"

namespace ipc::launcher {

/// The engine command for `options` (--engine mpirun or slurm) and what its
/// environment gets besides ipcrun's: NAME=VALUE, the -x variables and the options'
/// environment equivalents. @throws ipc::UsageError naming an option the engine cannot take.
struct EngineCommand {
  std::vector<std::string> argv;
  std::vector<std::string> environment;
};
EngineCommand engine_command(const Options& options);

/// Runs the engine command and waits for it. @returns its exit status (128+N when
/// killed by signal N), 124 after --timeout, 127 when the engine is not installed.
int run_engine(const EngineCommand& command, std::optional<double> timeout, double kill_grace);

/// Expands a Slurm node list ("node[1-3,7],gpu01") into host names.
/// @throws ipc::UsageError naming the list when malformed.
std::vector<std::string> expand_slurm_nodelist(const std::string& list);

/// The hosts of the Slurm allocation this process runs in (SLURM_JOB_NODELIST, with
/// SLURM_JOB_CPUS_PER_NODE as their slots), or nothing outside one.
std::optional<std::vector<Host>> slurm_allocation();

}  // namespace ipc::launcher
