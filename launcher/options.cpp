#include "options.hpp"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/errors.hpp"
#include "base/net.hpp"
#include "output.hpp"
#include "wire/certificate.hpp"

namespace ipc::launcher {
namespace {

constexpr const char* kFooter = R"(Every rank gets its environment (on this host ipcrun's, on others that of the
launch agent's session, plus ipcrun's IPC_* variables) and:
  IPC_RANK, IPC_SIZE, IPC_LOCAL_RANK, IPC_LOCAL_SIZE, IPC_NODE, IPC_JOB,
  IPC_BOOTSTRAP (host:port of the key-value server of its host's agent), IPC_JOB_SECRET,
  IPC_TCP_ADDR, the -x variables, IPC_TRANSPORTS, IPC_REPORT_TRANSPORTS,
  IPC_TCP_IFACE and IPC_TCP_PORTS.
Rank 0 reads ipcrun's standard input; the others read /dev/null.

Exit status: 0 when every rank exits 0; otherwise that of the first rank to fail
(128+N when killed by signal N), after the other ranks are stopped; 124 after
--timeout; 126 or 127 when the program cannot be run; 141 when the reader of
ipcrun's stdout went away (the ranks get SIGPIPE); 255 when a host cannot be reached
or is lost; 2 for a usage error.
SIGINT or SIGTERM to ipcrun is forwarded to every rank; a second one kills them.
SIGTSTP (Ctrl-Z) stops every rank, then ipcrun; SIGCONT (fg, bg) continues them.
A job that hangs: `ipcrun --dump [PID]` from another terminal (or SIGQUIT to ipcrun,
or a --timeout that fires) makes every rank report what it waits for; ipcrun prints
one block per rank and a summary naming the likely cause.
`ipcrun --list-params` lists the IPC_* environment parameters.)";

/// CLI11's usage line does not know that the program ends the options.
class Formatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string name) const override {
    return "Usage: " + name + " [options] program [args...]\n       " + name + " --dump [PID]\n";
  }
};

void usage_error(const std::string& what) {
  say(what + " (see 'ipcrun --help')");
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options& out) {
  CLI::App app{"Starts a parallel job: N copies of a program, the ranks, on this host or on the\nhosts of --hostfile or --host (through ssh).", "ipcrun"};
  app.formatter(std::make_shared<Formatter>());
  app.prefix_command();
  app.footer(kFooter);
  app.get_formatter()->column_width(30);

  app.add_option("-n,--np", out.np, "number of ranks to start (default 1)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1, 1 << 20)).description(""));
  app.add_flag("--tag-output", out.tag_output, "prefix every output line with \"[rank] \"");
  app.add_option("-x", out.exports, "export NAME, or set NAME=VALUE, for the ranks; repeatable")
      ->type_name("NAME[=VALUE]")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto positive_seconds = CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        double s = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !(s > 0) || !std::isfinite(s))
          return "expected a positive number of seconds, not '" + text + "'";
        return {};
      },
      "");
  std::string timeout, launch_timeout;
  app.add_option("--timeout", timeout, "stop the job after S seconds (fractions allowed); exit 124")
      ->type_name("S")
      ->check(positive_seconds);
  app.add_option("--transports", out.transports,
                 "transports the ranks may use, in order of preference\n(sets IPC_TRANSPORTS)")
      ->type_name("LIST");
  app.add_flag("--report-transports", out.report_transports,
               "print the transport chosen for each pair of ranks\n(sets IPC_REPORT_TRANSPORTS=1)");
  app.add_flag("--keep-going", out.keep_going, "a failing rank does not stop the others");
  app.add_flag("--list-params", out.list_params, "list the IPC_* environment parameters and exit");
  app.add_flag("--version", out.version, "print the version and exit");
  app.add_flag("--cleanup", out.cleanup,
               "remove shared memory left by jobs whose ipcrun was killed, and exit\n"
               "(every ipcrun also does this when it starts)");
  app.add_option("--iface", out.iface,
                 "the ranks' TCP connections use this interface's address:\na name (eth0) or an IPv4 network "
                 "(10.1.0.0/16)\n(sets IPC_TCP_IFACE)")
      ->type_name("NAME|CIDR");
  app.add_option("--port-range", out.port_range,
                 "the ranks listen on ports of this range only, for\nfirewalled sites (sets IPC_TCP_PORTS)")
      ->type_name("A-B");
  app.add_option("--hostfile", out.hostfile, "hosts to run on and their slots, in Open MPI's syntax\n(hostfile.example)")
      ->type_name("FILE");
  app.add_option("--host", out.host, "hosts to run on: host[:slots],... (1 slot when not given)")
      ->type_name("LIST");
  app.add_option("--map-by", out.map_by, "slot (default): fill each host's slots in turn;\nnode: one rank per host in turn")
      ->type_name("WHAT")
      ->check(CLI::IsMember({"slot", "node"}));
  app.add_flag("--oversubscribe", out.oversubscribe, "allow more ranks than the hosts have slots");
  app.add_flag("--display-map", out.display_map, "print which host each rank runs on, before the job");
  app.add_option("--launch-agent", out.launch_agent,
                 "how ipcrun reaches another host: CMD HOST COMMAND runs\nCOMMAND there (default: IPC_LAUNCH_AGENT, else ssh)")
      ->type_name("CMD");
  app.add_option("--launch-timeout", launch_timeout,
                 "seconds every host's agent has to answer (default 30,\nIPC_LAUNCH_TIMEOUT)")
      ->type_name("S")
      ->check(positive_seconds);
  app.add_flag("--tls", out.tls,
               "the ranks' TCP connections run over TLS 1.3 with a\ncertificate made for the job (README: Security)");
  app.add_option("--tls-cert", out.tls_cert, "with --tls: the ranks' certificate (PEM) instead of\none made for the job")
      ->type_name("FILE");
  app.add_option("--tls-key", out.tls_key, "with --tls-cert: its private key (PEM)")->type_name("FILE");
  app.add_option("--tls-ca", out.tls_ca, "with --tls-cert: the CA peers' certificates must chain\nto (default: the certificate itself)")
      ->type_name("FILE");
  app.add_option("--engine", out.engine,
                 "ipcrun (default): ipcrun starts the ranks; mpirun or\nslurm: hand the job to Open MPI's mpirun or "
                 "Slurm's srun\n(the ranks start through PMIx; README: Engines)")
      ->type_name("WHO")
      ->check(CLI::IsMember({"ipcrun", "mpirun", "slurm"}));
  app.add_option("--bind-to", out.bind_to,
                 "core: pin each rank to one CPU; none; auto (default):\ncore when each machine's ranks fit "
                 "its CPUs")
      ->type_name("WHAT")
      ->check(CLI::IsMember({"core", "none", "auto"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help() << std::flush;
    return 0;
  } catch (const CLI::ParseError& e) {
    usage_error(e.what());
    return 2;
  }

  out.command = app.remaining();
  // Unknown options land in `remaining` too: before a `--`, only a name not
  // starting with '-' can be the program.
  bool after_dashes = !out.command.empty() && out.command.front() == "--";
  if (after_dashes) out.command.erase(out.command.begin());
  if (!after_dashes && !out.command.empty() && out.command.front().size() > 1 && out.command.front()[0] == '-') {
    usage_error(CLI::ExtrasError({out.command.front()}).what());
    return 2;
  }
  if (!timeout.empty()) out.timeout = std::strtod(timeout.c_str(), nullptr);
  if (!launch_timeout.empty()) out.launch_timeout = std::strtod(launch_timeout.c_str(), nullptr);
  // Checked before any rank starts: the interface on this host, the range's form.
  try {
    if (out.iface) net::interface_address(*out.iface, "--iface");
    if (out.port_range) net::parse_port_range(*out.port_range, "--port-range");
    if (out.transports) check_transports(*out.transports, "--transports", out.np);
  } catch (const std::exception& e) {
    usage_error(e.what());
    return 2;
  }
  for (const auto& x : out.exports) {
    // A name as the shell's: letters, digits and '_', not starting with a digit.
    const std::string name = x.substr(0, x.find('='));
    bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char ch : name) valid = valid && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!valid) {
      usage_error("-x '" + x + "': expected NAME or NAME=VALUE (a NAME of letters, digits and _)");
      return 2;
    }
  }
  if (out.hostfile && out.host) {
    usage_error("give --hostfile or --host, not both");
    return 2;
  }
  if ((out.tls_cert || out.tls_key || out.tls_ca) && !out.tls) {
    usage_error("--tls-cert, --tls-key and --tls-ca go with --tls");
    return 2;
  }
  if (out.tls_cert.has_value() != out.tls_key.has_value() || (out.tls_ca && !out.tls_cert)) {
    usage_error("--tls-cert and --tls-key go together (and --tls-ca with them)");
    return 2;
  }
  if (out.command.empty() && !out.version && !out.list_params && !out.cleanup) {
    usage_error("no program given");
    return 2;
  }
  return std::nullopt;
}

std::vector<std::string> tls_environment(const Options& o) {
  std::string cert, key, ca;
  auto read = [](const std::string& path, const char* option) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    if (!f || !(s << f.rdbuf())) throw UsageError(std::string(option) + " " + path + ": cannot be read");
    return s.str();
  };
  if (o.tls_cert) {
    cert = read(*o.tls_cert, "--tls-cert");
    key = read(*o.tls_key, "--tls-key");
    ca = o.tls_ca ? read(*o.tls_ca, "--tls-ca") : cert;
    try {
      wire::check_certificate(cert, key, ca);
    } catch (const std::exception& e) {
      throw UsageError("--tls-cert " + *o.tls_cert + ", --tls-key " + *o.tls_key +
                       (o.tls_ca ? ", --tls-ca " + *o.tls_ca : std::string()) + ": " + e.what());
    }
  } else {
    wire::make_certificate("ipc job on " + net::host_name(), 30, cert, key);
    ca = cert;
  }
  return {"IPC_TLS=1", "IPC_TLS_CERT=" + cert, "IPC_TLS_KEY=" + key, "IPC_TLS_CA=" + ca};
}

void check_transports(const std::string& list, const std::string& what, int ranks) {
  const std::string built = IPC_BUILT_TRANSPORTS;
  auto known = [&](const std::string& name) { return ("," + built + ",").find("," + name + ",") != std::string::npos; };
  std::string have = built;
  for (std::size_t i = 0; (i = have.find(',', i)) != std::string::npos; i += 2) have.replace(i, 1, ", ");
  bool reaches = false;  // names a transport between ranks (self reaches only the rank itself)
  std::size_t pos = 0;
  while (pos <= list.size()) {
    auto comma = list.find(',', pos);
    auto item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (!item.empty() && !known(item))
      throw UsageError(what + ": unknown transport '" + item + "' (this build has: " + have + ")");
    reaches |= !item.empty() && item != "self";
  }
  if (!reaches && ranks > 1)
    throw UsageError(what + "='" + list + "' names no transport between ranks, which a job of " + std::to_string(ranks) +
                     " ranks needs (this build has: " + have + ")");
}

std::vector<Export> resolve_exports(const std::vector<std::string>& args) {
  std::vector<Export> result;
  for (const auto& x : args) {
    auto eq = x.find('=');
    if (eq != std::string::npos) {
      result.push_back({x.substr(0, eq), x.substr(eq + 1)});
    } else if (const char* v = std::getenv(x.c_str())) {
      result.push_back({x, v});
    } else {
      say("warning: -x " + x + ": " + x + " is not set in ipcrun's environment; not exported");
    }
  }
  return result;
}

}  // namespace ipc::launcher
