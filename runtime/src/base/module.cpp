#include "base/module.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstddef>
#include <vector>

namespace ipc::base {
namespace {

const void* try_load(const std::string& path, const ModuleSpec& spec, std::string& why) {
  void* h = ::dlopen(path.c_str(), spec.dl_flags);
  if (!h) {
    const char* e = ::dlerror();
    why = e ? e : path + ": cannot be loaded";
    return nullptr;
  }
  using Entry = const void* (*)();
  auto entry = reinterpret_cast<Entry>(::dlsym(h, spec.entry));
  const void* table = entry ? entry() : nullptr;
  if (!table)
    why = path + ": not an " + spec.kind + " (no " + spec.entry + ")";
  else if (int abi = spec.abi_of(table); abi != spec.abi)
    why = path + ": a module of another version of ipc (interface " + std::to_string(abi) + ", this one " +
          std::to_string(spec.abi) + ")";
  if (!why.empty()) {
    ::dlclose(h);
    return nullptr;
  }
  return table;
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

}  // namespace

const void* load_module(const ModuleSpec& spec, std::string& tried) {
  std::vector<std::string> places;
  if (!spec.named.empty()) {
    places.push_back(spec.named);  // asked for: nothing else is tried
  } else {
    for (auto& dir : program_search_path()) {
      std::string file = dir + "/" + spec.file;
      if (::access(file.c_str(), F_OK) == 0) places.push_back(file);
    }
    // Then the bare name (where the search path could not be asked for) and the
    // configured prefix.
    for (const char* p : {spec.file, spec.installed})
      if (p && *p) places.emplace_back(p);
  }
  for (auto& place : places) {
    std::string why;
    if (const void* t = try_load(place, spec, why)) return t;
    tried += "\n  " + why;
  }
  return nullptr;
}

}  // namespace ipc::base
