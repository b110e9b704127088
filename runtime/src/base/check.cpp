#include "base/check.hpp"

#include <cstring>

namespace ipc::base {

void enforce_failed(const char* file, int line, const char* condition, const std::string& message) {
  const char* base = std::strstr(file, "runtime/");
  throw ProtocolError(message + " (check '" + condition + "' failed at " + (base ? base : file) + ":" +
                      std::to_string(line) + ")");
}

}  // namespace ipc::base
