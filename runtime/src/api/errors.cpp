#include <string>

#include "base/errors.hpp"
#include "ipc/value.hpp"

namespace ipc::detail {

void throw_size_mismatch(std::size_t bytes, std::size_t expected, const char* what) {
  throw Truncation("a message of " + std::to_string(bytes) + " bytes does not fit the receive buffer (" + what +
                   " " + std::to_string(expected) + " bytes)");
}

void throw_deserialize_failed(const std::exception& e) {
  throw Truncation(std::string("a received message could not be deserialized into the receive type: ") + e.what());
}

}  // namespace ipc::detail
