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

struct Param {
  const char* name;
  const char* fallback;  // default value, as text
  const char* help;
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

}  // namespace ipc::base

/// Defines `params`, the table of a floor's parameters, in namespace `ns`:
///     IPC_PARAMS(ipc::transport::shm,
///                {"IPC_SHM_EAGER", "65536", "shm: ..."},
///                ...);
/// The build lists every such table (runtime/CMakeLists.txt, IPC_PARAM_TABLES).
#define IPC_PARAMS(ns, ...)                                         \
  namespace ns {                                                    \
  constexpr ::ipc::base::Param params_declared[] = {__VA_ARGS__};   \
  extern const ::ipc::base::ParamTable params;                      \
  const ::ipc::base::ParamTable params = params_declared;           \
  }                                                                 \
  static_assert(true)
