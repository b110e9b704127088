// Finding and loading the engines module (engines/abi.hpp).
#include <dlfcn.h>

#include <cstddef>
#include <mutex>
#include <string>

#include "base/errors.hpp"
#include "base/module.hpp"
#include "base/params.hpp"
#include "engines/abi.hpp"

namespace ipc::engines {
namespace {

// Where `cmake --install` puts the module under the prefix configured (a last resort:
// programs find it by name, through the run path the build gives them).
#ifndef IPC_ENGINES_INSTALLED
#define IPC_ENGINES_INSTALLED ""
#endif
constexpr const char* kName = "libipc-engines.so";

const Module* load() {
  // Loaded with RTLD_GLOBAL: Open MPI opens components of its own that look for its
  // symbols among the process's global ones.
  base::ModuleSpec spec{kName, "ipc engines module", base::param("IPC_ENGINES"), IPC_ENGINES_INSTALLED, "ipc_engines_module",
                        RTLD_NOW | RTLD_GLOBAL, kAbi,
                        [](const void* t) { return static_cast<const Module*>(t)->abi; }};
  std::string tried;
  if (const void* m = base::load_module(spec, tried)) return static_cast<const Module*>(m);
  throw BootstrapError(
      "bootstrap: an engine (mpirun, srun) started this rank, but the engines module of ipc (PMIx and MPI) cannot be "
      "loaded; tried:" + tried + "\n(IPC_ENGINES names the module's file: libipc-engines.so, in the build's lib/ or the "
      "installation's lib/ipc/; a program finds it through the run path it was linked with)");
}

}  // namespace

const Module& module() {
  // A mutex, not std::call_once: a call after one that threw must try again (a
  // program may catch the error and start another Runtime), and libstdc++'s call_once
  // can hang there.
  static std::mutex mu;
  static const Module* m = nullptr;
  std::lock_guard lk(mu);
  if (!m) m = load();
  return *m;
}

namespace {
// A table of the module, looked up once per type (a function-local static: looked up
// again after a throw); E is thrown, with `missing`, when the module lacks it.
template <class Calls, class E>
const Calls& table(const Calls* Module::*field, const char* missing) {
  static const Calls* c = [&] {
    const Calls* t = module().*field;
    if (!t) throw E(missing);
    return t;
  }();
  return *c;
}
}  // namespace

const PmixCalls& pmix() {
  return table<PmixCalls, BootstrapError>(&Module::pmix, "bootstrap: the engines module of ipc was built without PMIx");
}
const MpiCalls& mpi() {
  return table<MpiCalls, Error>(&Module::mpi, "mpi transport: the engines module of ipc was built without MPI");
}

}  // namespace ipc::engines
