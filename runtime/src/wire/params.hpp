// Every tunable environment parameter, declared once with its default and help
// (`ipcrun --list-params` prints this table). The launcher and the runtime read them
// through these functions so that a job behaves the same under ipcrun, mpirun or srun.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ipc::wire {

struct Param {
  const char* name;
  const char* fallback;  // default value, as text
  const char* help;
};

/// The table, in the order `--list-params` prints it.
std::span<const Param> all_params();

/// The value of a declared parameter: the environment's, else its default.
/// @throws std::logic_error for a name that is not declared.
std::string param(std::string_view name);
/// As an integer. @throws std::invalid_argument naming the parameter when not one.
std::int64_t param_int(std::string_view name);
/// As a boolean: 1/0, true/false, yes/no, on/off.
bool param_bool(std::string_view name);
/// As a number of seconds (may be fractional).
double param_seconds(std::string_view name);

}  // namespace ipc::wire
