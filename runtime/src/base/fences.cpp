#include "base/fences.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace ipc::base {
namespace {

long membarrier(int cmd) { return ::syscall(SYS_membarrier, cmd, 0u, 0); }

bool supported() {
  static const bool ok = [] {
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) && (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
  }();
  return ok;
}

}  // namespace

bool light_fences() {
  static const bool ok = supported() && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
  return ok;
}

void heavy_fence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (supported()) membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

}  // namespace ipc::base
