#include "base/params.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include "base/check.hpp"
#include "base/errors.hpp"

namespace ipc::base {
namespace {

constexpr Param kParams[] = {  // the job's; collectives and transports declare their own (*/params.cpp)
    {"IPC_TRANSPORTS", IPC_DEFAULT_TRANSPORTS, "transports a rank may use, in order of preference (self is always on; mpi only under mpirun or srun)"},
    {"IPC_REPORT_TRANSPORTS", "0", "print the transport chosen for every ordered pair of ranks at start-up", Kind::boolean},
    {"IPC_WAIT_SPIN_US", "50", "a blocked call busy-polls this long before it starts yielding the CPU", Kind::count},
    {"IPC_WAIT_YIELD_US", "2000", "then polls with sched_yield() between polls this long before it sleeps", Kind::count},
    {"IPC_WAIT_GROUP_YIELD_US", "100", "how long a collective's wait through the node's shared segment polls with sched_yield() before it sleeps when ranks outnumber the node's CPUs (instead of IPC_WAIT_YIELD_US): ranks not there by then are doing other work, which its yields would slow (docs/design.md)", Kind::count},
    {"IPC_OVERSUBSCRIBED", "auto", "yield from the first poll on: auto (when ranks on the node outnumber its CPUs), 1 or 0", Kind::boolean},
    {"IPC_PROGRESS_THREAD", "1", "run a background progress thread (keeps TCP moving while the program computes)", Kind::boolean},
    {"IPC_MAX_MESSAGE", "1099511627776", "largest message accepted off the wire, in bytes", Kind::count},
    {"IPC_ENGINES", "", "the engines module (libipc-engines.so: PMIx and MPI) a rank started by mpirun or srun loads; empty: found through the program's run path (the build's lib/ or the installation's lib/ipc/)"},
    {"IPC_BOOTSTRAP_TIMEOUT", "120", "seconds a rank waits for the bootstrap server (connect, get) and for the other ranks at start-up (then ipc::Timeout)", Kind::seconds},
    {"IPC_RPC_DEFINE_WAIT", "10", "seconds a call to a procedure not yet defined on its rank waits there for the definition (then ipc::CallRefused)", Kind::seconds},
    {"IPC_LOST_PEER_GRACE", "0.5", "seconds a rank dying of an uncaught ipc::PeerLost waits first, so that the launcher reports the rank that failed first", Kind::seconds},
    {"IPC_KILL_GRACE", "1", "ipcrun: seconds between SIGTERM and SIGKILL when stopping ranks", Kind::seconds},
    {"IPC_LAUNCH_AGENT", "ssh", "ipcrun: command that runs its agent on another host (--launch-agent)"},
    {"IPC_LAUNCH_TIMEOUT", "30", "ipcrun: seconds every host's agent has to answer (--launch-timeout)", Kind::seconds},
    {"IPC_LINK_TIMEOUT", "10", "ipcrun: seconds of silence after which a host's agent counts as lost (both ways)", Kind::seconds},
    {"IPC_DUMP_WAIT", "2", "ipcrun: seconds a dump (ipcrun --dump, SIGQUIT, --timeout) waits for the ranks' reports", Kind::seconds},
};

const Param& find(std::string_view name) {
  for (const ParamTable& t : param_tables())
    for (auto& p : t)
      if (name == p.name) return p;
  IPC_ENFORCE(false, "parameter " + std::string(name) + " is read but declared in no table");
  std::abort();  // not reached
}

// The environment's value, else the default.
std::string value_of(const Param& p) {
  const char* v = std::getenv(p.name);
  return v ? v : p.fallback;
}

}  // namespace

extern const ParamTable job_params;
const ParamTable job_params = kParams;

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (const ParamTable& t : param_tables()) out.insert(out.end(), t.begin(), t.end());
  return out;
}

std::string param(std::string_view name) { return value_of(find(name)); }

namespace {

std::string quoted(const Param& p, const std::string& v) { return std::string(p.name) + "='" + v + "'"; }

std::optional<std::int64_t> parse_int(const std::string& v) {
  try {
    std::size_t used = 0;
    auto n = std::stoll(v, &used, 0);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<bool> parse_bool(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  return std::nullopt;
}

std::optional<double> parse_seconds(const std::string& v) {
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used == v.size() && d >= 0) return d;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The values a choice takes, in its declared order.
std::vector<std::string_view> choices(const Param& p) {
  std::vector<std::string_view> out;
  std::string_view rest = p.choices;
  while (!rest.empty()) {
    auto end = rest.find(' ');
    out.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
  return out;
}

// What a value of `p` is, for an error.
std::string described(const Param& p) {
  std::string auto_or = std::string_view(p.fallback) == "auto" ? "auto or " : "";
  switch (p.kind) {
    case Kind::count:
      return auto_or + "an integer, 0 or more";
    case Kind::boolean:
      return auto_or + "a boolean (1 or 0)";
    case Kind::seconds:
      return auto_or + "a number of seconds, 0 or more";
    case Kind::choice: {
      std::string list = std::string_view(p.fallback) == "auto" ? "auto" : "";
      for (auto c : choices(p)) list += (list.empty() ? "" : ", ") + std::string(c);
      return "one of " + list;
    }
    case Kind::text:
      break;
  }
  return "text";
}

bool valid(const Param& p, const std::string& v) {
  if (v == "auto" && std::string_view(p.fallback) == "auto") return true;
  switch (p.kind) {
    case Kind::count: {
      auto n = parse_int(v);
      return n && *n >= 0;
    }
    case Kind::boolean:
      return parse_bool(v).has_value();
    case Kind::seconds:
      return parse_seconds(v).has_value();
    case Kind::choice: {
      auto all = choices(p);
      return std::find(all.begin(), all.end(), v) != all.end();
    }
    case Kind::text:
      break;
  }
  return true;
}

// The value of a declared parameter, checked against its kind.
std::string checked(const Param& p) {
  std::string v = value_of(p);
  std::string why = param_problem(p, v);
  if (!why.empty()) throw UsageError(why);
  return v;
}

// What a reader of another kind than the parameter's throws (a value that passed the
// check: "auto" where the reader wants a number).
[[noreturn]] void unreadable(const Param& p, const std::string& v, const char* as) {
  throw UsageError(quoted(p, v) + " is not " + as);
}

}  // namespace

std::string param_problem(const Param& p, const std::string& value) {
  return valid(p, value) ? "" : quoted(p, value) + " is not " + described(p);
}

std::int64_t param_int(std::string_view name) {
  const Param& p = find(name);
  std::string v = checked(p);
  if (auto n = parse_int(v)) return *n;
  unreadable(p, v, "an integer");
}

bool param_bool(std::string_view name) {
  const Param& p = find(name);
  std::string v = checked(p);
  if (auto b = parse_bool(v)) return *b;
  unreadable(p, v, "a boolean (1 or 0)");
}

double param_seconds(std::string_view name) {
  const Param& p = find(name);
  std::string v = checked(p);
  if (auto d = parse_seconds(v)) return *d;
  unreadable(p, v, "a number of seconds");
}

std::string param_checked(std::string_view name) { return checked(find(name)); }

void check_params(const std::vector<std::string>& overrides) {
  std::string why;
  for (const Param& p : all_params()) {
    std::optional<std::string> v;
    if (const char* e = std::getenv(p.name)) v = e;
    // -x NAME=VALUE wins over the environment (the last one, as the ranks see it).
    const std::string prefix = std::string(p.name) + "=";
    for (const auto& o : overrides)
      if (o.compare(0, prefix.size(), prefix) == 0) v = o.substr(prefix.size());
    std::string w = v ? param_problem(p, *v) : "";
    if (!w.empty()) why += (why.empty() ? "" : "\n") + w;
  }
  if (!why.empty()) throw UsageError(why);
}

}  // namespace ipc::base
