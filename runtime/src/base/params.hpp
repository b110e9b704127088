// Every tunable environment parameter, declared once with its default and help
// (`ipcrun --list-params` prints this table). The launcher and the runtime read them
// through these functions so that a job behaves the same under ipcrun, mpirun or srun.
// A value that does not parse is an ipc::UsageError naming the variable and its value.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ipc::base {

/// What a parameter's value must be. A parameter whose default is "auto" also takes
/// "auto". ipcrun checks every one set in its environment (or by -x) before it starts
/// a rank: a malformed value is one error there, not one per rank.
enum class Kind : unsigned char {
  text,     // anything (its reader checks the rest: a transport list, an address)
  count,    // an integer, 0 or more: bytes, counts, microseconds
  boolean,  // 1/0, true/false, yes/no, on/off
  seconds,  // a number of seconds, 0 or more, may be fractional
  choice,   // one of Param::choices
};

struct Param {
  const char* name;
  const char* fallback;  // default value, as text
  const char* help;
  Kind kind = Kind::text;
  const char* choices = "";  // Kind::choice: the values it takes, separated by spaces
};

/// A table of parameters, declared where they are used (the job's in base/params.cpp,
/// the collectives' and each transport's in their folders: IPC_PARAMS below).
using ParamTable = std::span<const Param>;

/// Every table of this build: the job's, then the collectives', then the transports'.
/// Defined in a file the build generates (runtime/CMakeLists.txt).
std::span<const ParamTable> param_tables();

/// Every parameter, in the order `--list-params` prints them.
std::vector<Param> all_params();

/// The value of a declared parameter: the environment's, else its default.
/// A name declared in no table is a broken invariant (ipc::ProtocolError, IPC_ENFORCE).
std::string param(std::string_view name);
/// As an integer. @throws ipc::UsageError naming the parameter and its value when not one.
std::int64_t param_int(std::string_view name);
/// As a boolean: 1/0, true/false, yes/no, on/off. @throws ipc::UsageError as param_int.
bool param_bool(std::string_view name);
/// As a number of seconds (may be fractional). @throws ipc::UsageError as param_int.
double param_seconds(std::string_view name);
/// As text, checked against the parameter's kind (a choice: one of its values).
/// @throws ipc::UsageError as param_int.
std::string param_checked(std::string_view name);

/// Why `value` is not a value of `p` ("" when it is one): the text of the
/// ipc::UsageError its reader would throw, naming the parameter and the value.
std::string param_problem(const Param& p, const std::string& value);

/// Every declared parameter set in the environment, and every `NAME=VALUE` of
/// `overrides` that names one, checked against its kind.
/// @throws ipc::UsageError listing every malformed one, one per line.
void check_params(const std::vector<std::string>& overrides = {});

}  // namespace ipc::base

/// Defines `params`, the table of a floor's parameters, in namespace `ns`:
///     IPC_PARAMS(ipc::transport::shm,
///                {"IPC_SHM_EAGER", "65536", "shm: ..."},
///                ...);
/// The build lists every such table (runtime/CMakeLists.txt, IPC_PARAM_TABLES).
/// An entry names its kind and choices after its help, unqualified:
///                {"IPC_SHM_CMA", "auto", "shm: ...", boolean},
#define IPC_PARAMS(ns, ...)                                                   \
  namespace ns {                                                              \
  namespace params_kinds {                                                    \
  using enum ::ipc::base::Kind;                                               \
  constexpr ::ipc::base::Param declared[] = {__VA_ARGS__};                    \
  }                                                                           \
  extern const ::ipc::base::ParamTable params;                                \
  const ::ipc::base::ParamTable params = params_kinds::declared;              \
  }                                                                           \
  static_assert(true)
