// ipcrun: starts the ranks of a parallel job and stays with them until they end.
// See options.hpp for the command line and job.hpp for the job's lifecycle.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <sstream>
#include <exception>
#include <string>


#include <thread>

#include "agent.hpp"
#include "dump.hpp"
#include "engine.hpp"
#include "base/errors.hpp"
#include "base/net.hpp"
#include "job.hpp"
#include "options.hpp"
#include "shm_cleanup.hpp"
#include "output.hpp"
#include "spawn.hpp"
#include "base/params.hpp"

namespace {

using namespace ipc::launcher;

/// Descriptors 0, 1 and 2 are open (on /dev/null if need be), so that pipes made
/// later never take their numbers.
void ensure_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (null >= 0 && null != fd) {
        ::dup2(null, fd);
        ::close(null);
      }
    }
  }
}

void list_params() {
  auto params = ipc::base::all_params();
  std::size_t name_w = 0, value_w = 0;
  // An empty default shows as '' (the column stays readable and aligned).
  auto shown = [](const char* v) { return *v ? std::string(v) : std::string("''"); };
  for (const auto& p : params) {
    name_w = std::max(name_w, std::strlen(p.name));
    value_w = std::max(value_w, shown(p.fallback).size());
  }
  std::string out;
  for (const auto& p : params) {
    std::string name = p.name, value = shown(p.fallback);
    name.resize(name_w, ' ');
    value.resize(value_w, ' ');
    out += name + "  " + value + "  " + p.help + "\n";
  }
  stdout_sink().write(out);
}

/// Every IPC_* parameter set in the environment or by -x, checked before any rank
/// starts: a malformed value is reported once, here, not by every rank (as an
/// uncaught error) as it reads it.
bool params_valid(const Options& options) {
  try {
    ipc::base::check_params(options.exports);
    return true;
  } catch (const ipc::UsageError& e) {
    std::istringstream lines(e.what());
    for (std::string line; std::getline(lines, line);) say(line);
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  ensure_standard_descriptors();
  // A node agent, started by an ipcrun (agent.hpp): not for users, so not in --help.
  if (argc == 2 && std::strcmp(argv[1], "--agent") == 0) return run_agent();
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error to handle, not a death
  // What a running job waits for (launcher/dump.hpp).
  if (argc >= 2 && std::strcmp(argv[1], "--dump") == 0) {
    if (argc > 3) {
      std::cerr << "ipcrun: --dump takes at most one argument, the pid of the job's ipcrun" << std::endl;
      return 2;
    }
    try {
      return ipc::launcher::request_dump(argc == 3 ? argv[2] : "");
    } catch (const std::exception& e) {  // a malformed IPC_DUMP_WAIT
      say(e.what());
      return 2;
    }
  }

  Options options;
  if (auto status = parse_options(argc, argv, options)) return *status;
  if (options.version) {
    stdout_sink().write("ipcrun (ipc) " IPC_VERSION_STRING "\n");
    return 0;
  }
  if (options.list_params) {
    list_params();
    return 0;
  }
  if (options.cleanup) {
    int n = remove_stale_segments(true);
    stdout_sink().write("ipcrun: removed " + std::to_string(n) + " stale shared-memory segment" +
                        (n == 1 ? "" : "s") + "\n");
    return 0;
  }

  if (options.engine != "ipcrun") {  // mpirun or srun places and starts the ranks
    try {
      if (!params_valid(options)) return 2;
      auto command = engine_command(options);
      if (!options.transports) check_transports(ipc::base::param("IPC_TRANSPORTS"), "IPC_TRANSPORTS", options.np);
      return run_engine(command, options.timeout, ipc::base::param_seconds("IPC_KILL_GRACE"));
    } catch (const ipc::UsageError& e) {
      say(e.what());
      return 2;
    } catch (const std::exception& e) {
      say(e.what());
      return 127;
    }
  }

  auto program = resolve_program(options.command.front());
  if (auto* error = std::get_if<ProgramError>(&program)) {
    say(error->message);
    return error->status;
  }
  if (!params_valid(options)) return 2;
  double kill_grace = 0;
  try {
    kill_grace = ipc::base::param_seconds("IPC_KILL_GRACE");
    for (const char* name : {"IPC_LAUNCH_TIMEOUT", "IPC_LINK_TIMEOUT", "IPC_DUMP_WAIT"})
      if (!(ipc::base::param_seconds(name) > 0))
        throw ipc::UsageError(std::string(name) + "='" + ipc::base::param(name) + "' must be a positive number of seconds");
    if (!options.transports) check_transports(ipc::base::param("IPC_TRANSPORTS"), "IPC_TRANSPORTS", options.np);
    std::string launch_agent = options.launch_agent ? *options.launch_agent : ipc::base::param("IPC_LAUNCH_AGENT");
    if (launch_agent.find_first_not_of(" \t") == std::string::npos)
      throw ipc::UsageError(options.launch_agent ? "--launch-agent is empty" : "IPC_LAUNCH_AGENT is empty");
    // The job's certificate and key reach the ranks as -x variables do (in the
    // environment, never on a command line).
    if (options.tls)
      for (auto& e : tls_environment(options)) options.exports.push_back(e);
  } catch (const std::exception& e) {
    say(e.what());
    return 2;
  }

  Placement placement;
  try {
    // Inside a Slurm allocation, without hosts of its own, the job runs on the allocation's.
    if (!options.hostfile && !options.host)
      if (auto hosts = slurm_allocation()) {
        std::string list;
        for (auto& h : *hosts) list += (list.empty() ? "" : ",") + h.name + (h.slots ? ":" + std::to_string(*h.slots) : "");
        options.host = list;
      }
    placement = plan_job(options.hostfile, options.host, options.np, options.map_by, options.oversubscribe,
                         ipc::net::host_name(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  } catch (const std::exception& e) {
    say(e.what());
    return 2;
  }
  // Before any rank starts, not at rank 6,000: an agent holds 3 descriptors a rank of
  // its host (checked here for the largest host; each agent checks its own too).
  raise_descriptor_limit();
  int most = *std::max_element(placement.local_size.begin(), placement.local_size.end());
  if (auto shortage = descriptor_shortage(most)) {
    say(*shortage);
    return 2;
  }

  try {
    Job job(options, std::get<std::string>(program), kill_grace, std::move(placement));
    int status = job.run();
    flush_output();
    return status;
  } catch (const std::exception& e) {
    say(e.what());
    flush_output();
    return 1;
  }
}
