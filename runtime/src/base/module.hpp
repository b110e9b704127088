// Finding and loading one of ipc's modules: shared objects that carry what only some
// jobs need, with the libraries it needs (the engines module: PMIx and MPI,
// engines/abi.hpp; the TLS module: OpenSSL, transport/tcp/tls_abi.hpp), so that every
// other process of every job starts without them.
#pragma once

#include <string>

namespace ipc::base {

struct ModuleSpec {
  const char* file;       // its file name, "libipc-tls.so"
  const char* kind;       // what it is, for errors: "ipc TLS module"
  std::string named;      // a path the user gave (a parameter): nothing else is tried
  const char* installed;  // where the installation puts it (the last resort), or ""
  const char* entry;      // the function it exports, returning its table
  int dl_flags;           // dlopen's
  int abi;                // the interface number this build speaks
  int (*abi_of)(const void* table);  // the one a table it returned speaks
};

/// The table the module's entry returns, from the first place where it loads and
/// checks: `named`, else the directories the program's libraries are looked for in
/// (its run path: the build's lib/ for a program built in the tree, the
/// installation's lib/ipc/ for one built against it), the bare name, `installed`.
/// A module of another interface number is refused. Null when none does, with
/// `tried` listing every place and why not.
const void* load_module(const ModuleSpec& spec, std::string& tried);

}  // namespace ipc::base
