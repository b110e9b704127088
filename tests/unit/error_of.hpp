// The message of the ipc::Error a call throws ("" when it throws none), for tests
// that check what a user reads.
#pragma once

#include <functional>
#include <string>

#include "base/errors.hpp"

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ipc::Error& e) {
    return e.what();
  }
  return "";
}
