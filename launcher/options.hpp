// ipcrun's command line: `ipcrun [options] program [args...]`.
//
// Parsing stops at the program: everything from its name on belongs to it, so
// `ipcrun -n 2 prog -n 5` hands `-n 5` to prog. Option names follow Open MPI's
// mpirun where one exists.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ipc::launcher {

struct Options {
  int np = 1;                             // -n/--np: number of ranks
  bool tag_output = false;                // --tag-output: prefix each line with "[rank] "
  std::vector<std::string> exports;       // -x NAME[=VALUE], in command-line order
  std::optional<double> timeout;          // --timeout S: stop the job after S seconds
  std::optional<std::string> transports;  // --transports LIST -> IPC_TRANSPORTS
  bool report_transports = false;         // --report-transports -> IPC_REPORT_TRANSPORTS=1
  bool keep_going = false;                // --keep-going: a failing rank does not stop the job
  bool list_params = false;               // --list-params: print the parameter table, exit
  bool version = false;                   // --version: print the version, exit
  bool cleanup = false;                   // --cleanup: remove stale shared memory of dead jobs, exit
  std::string bind_to = "auto";           // --bind-to core|none|auto: pin each rank to a CPU
  std::optional<std::string> iface;       // --iface NAME|CIDR -> IPC_TCP_IFACE
  std::optional<std::string> port_range;  // --port-range A-B -> IPC_TCP_PORTS
  std::optional<std::string> hostfile;    // --hostfile FILE: hosts and their slots
  std::optional<std::string> host;        // --host h1:2,h2:2
  std::string map_by = "slot";            // --map-by slot|node
  bool oversubscribe = false;             // --oversubscribe: more ranks than slots
  bool display_map = false;               // --display-map: one line per rank before the job
  std::optional<std::string> launch_agent;  // --launch-agent CMD: reaches other hosts (IPC_LAUNCH_AGENT, ssh)
  std::optional<double> launch_timeout;     // --launch-timeout S: for every agent to answer (IPC_LAUNCH_TIMEOUT)
  bool tls = false;                       // --tls: the ranks' TCP connections over TLS (IPC_TLS)
  std::optional<std::string> tls_cert;    // --tls-cert FILE: the ranks' certificate (else one made for the job)
  std::optional<std::string> tls_key;     // --tls-key FILE: its key
  std::optional<std::string> tls_ca;      // --tls-ca FILE: the CA peers' certificates chain to (default: --tls-cert)
  std::string engine = "ipcrun";          // --engine ipcrun|mpirun|slurm: who places and starts the ranks
  std::vector<std::string> command;       // program and its arguments
};

/// Parses argv into `out`. Returns an exit status when ipcrun must stop now:
/// 0 after --help, 2 after a usage error (already reported as one line on stderr).
/// --version and --list-params are left to the caller (flags in `out`).
std::optional<int> parse_options(int argc, char** argv, Options& out);

/// What --tls gives every rank: IPC_TLS=1 and IPC_TLS_CERT, IPC_TLS_KEY, IPC_TLS_CA as
/// NAME=VALUE (PEM text): the files given, checked, or a certificate made now for
/// the job. @throws ipc::UsageError naming the file and what is wrong.
std::vector<std::string> tls_environment(const Options& options);

/// Checks a list of transports (--transports, IPC_TRANSPORTS) against this build's,
/// and that a job of `ranks` ranks gets one between them (more than self).
/// @throws ipc::UsageError naming `what` and the unknown transport or the list.
void check_transports(const std::string& list, const std::string& what, int ranks = 1);

/// One environment assignment for the ranks, from a -x argument.
struct Export {
  std::string name;
  std::string value;
};

/// Resolves the -x arguments against ipcrun's own environment: `NAME=VALUE` sets,
/// `NAME` copies ipcrun's value (a warning, and nothing exported, when it is unset).
std::vector<Export> resolve_exports(const std::vector<std::string>& args);

}  // namespace ipc::launcher
