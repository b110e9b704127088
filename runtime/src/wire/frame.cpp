#include "wire/frame.hpp"

#include <cstring>

namespace ipc::wire {

std::string to_string(FrameError e) {
  switch (e) {
    case FrameError::ok: return "ok";
    case FrameError::bad_head: return "frame head size out of range";
    case FrameError::too_long: return "frame payload longer than the limit";
  }
  return "unknown frame error";
}

}  // namespace ipc::wire
