// Invariant checks: IPC_ENFORCE(cond, message).
//
// Two tiers of errors (docs/design.md): failures a program can meet throw the typed
// exceptions of errors.hpp; a broken invariant (bytes from a peer that contradict
// the protocol, state that cannot be) is checked with IPC_ENFORCE. It is on in every
// build, and on failure throws ipc::ProtocolError whose message gives the file, the
// line, the condition and `message`, so that the rank reports it where it happened
// instead of corrupting memory or printing a warning and going on. It never aborts:
// a peer that sends garbage must not be able to crash a rank; code that can only
// report a failed check as a value (a transport's poll) catches it there.
#pragma once

#include <string>

#include "base/errors.hpp"

namespace ipc::base {

[[noreturn]] void enforce_failed(const char* file, int line, const char* condition, const std::string& message);

}  // namespace ipc::base

#define IPC_ENFORCE(cond, message)                                                     \
  do {                                                                                \
    if (!(cond)) [[unlikely]]                                                         \
      ::ipc::base::enforce_failed(__FILE__, __LINE__, #cond, (message));              \
  } while (0)
