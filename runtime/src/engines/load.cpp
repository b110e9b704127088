// Finding and loading the engines module (engines/abi.hpp).
#include <dlfcn.h>
#include <unistd.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "base/errors.hpp"
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

// Loaded with RTLD_GLOBAL: Open MPI opens components of its own that look for its
// symbols among the process's global ones.
const Module* try_load(const std::string& path, std::string& why) {
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    const char* e = ::dlerror();
    why = e ? e : "cannot be loaded";
    return nullptr;
  }
  using Entry = const Module* (*)();
  auto entry = reinterpret_cast<Entry>(::dlsym(h, "ipc_engines_module"));
  const Module* m = entry ? entry() : nullptr;
  if (!m) {
    why = path + ": not an ipc engines module (no ipc_engines_module)";
  } else if (m->abi != kAbi) {
    why = path + ": a module of another version of ipc (interface " + std::to_string(m->abi) + ", this one " +
          std::to_string(kAbi) + ")";
    m = nullptr;
  }
  if (!m) ::dlclose(h);
  return m;
}

// The directories the main program's libraries are looked for in (its run path,
// LD_LIBRARY_PATH, the system's), as the dynamic linker has them. Asked for, not left
// to dlopen by name: dlopen looks in the run path of the object that calls it, which
// under a sanitizer that intercepts dlopen is the sanitizer's run-time, not the program.
std::vector<std::string> program_search_path() {
  std::vector<std::string> dirs;
  void* self = ::dlopen(nullptr, RTLD_NOW);
  if (!self) return dirs;
  Dl_serinfo size{};
  if (::dlinfo(self, RTLD_DI_SERINFOSIZE, &size) == 0 && size.dls_size >= sizeof(Dl_serinfo)) {
    std::vector<std::max_align_t> room((size.dls_size + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
    auto* info = reinterpret_cast<Dl_serinfo*>(room.data());
    *info = size;
    if (::dlinfo(self, RTLD_DI_SERINFO, info) == 0)
      for (unsigned i = 0; i < info->dls_cnt; ++i)
        if (info->dls_serpath[i].dls_name && *info->dls_serpath[i].dls_name)
          dirs.emplace_back(info->dls_serpath[i].dls_name);
  }
  ::dlclose(self);
  return dirs;
}

const Module* load() {
  std::vector<std::string> places;
  if (std::string named = base::param("IPC_ENGINES"); !named.empty()) {
    places.push_back(named);  // asked for: nothing else is tried
  } else {
    // By name first: the program's run path names the module's directory, the build's
    // (lib/) for a program built in the tree, the installation's (lib/ipc/) for one
    // built against an installed ipc (CMake package or pkg-config), wherever that is.
    for (auto& dir : program_search_path()) {
      std::string file = dir + "/" + kName;
      if (::access(file.c_str(), F_OK) == 0) places.push_back(file);
    }
    // Then the bare name (where the search path could not be asked for) and the
    // configured prefix.
    for (const char* p : {kName, IPC_ENGINES_INSTALLED})
      if (*p) places.emplace_back(p);
  }
  std::string tried;
  for (auto& place : places) {
    std::string why;
    if (const Module* m = try_load(place, why)) return m;
    tried += "\n  " + why;
  }
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
