// Asymmetric fences between processes: the frequent side of a store-then-load
// handshake (a sender publishing a message, then looking whether the receiver sleeps)
// skips its full fence, and the rare side (a receiver about to sleep) pays for both
// with membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on every
// CPU that is running a thread of a process registered for it (a thread that is not
// running passed one when it was switched out). After the heavy side's barrier, a
// store the light side made before is visible, and a load the light side makes after
// sees what the heavy side stored before it: the handshake's guarantee, as with a
// fence on both sides. A full fence costs the light side the drain of its store
// buffer, which holds the message's lines: a transfer from the other core's cache
// (on the way of every shared-memory message: the sender's 8% of a 4-byte message's
// cost, docs/transports.md).
//
// light_fence() skips the fence only when this process registered (its first call
// registers; a kernel without the command, or a sandbox refusing it, keeps the full
// fence); heavy_fence() issues the command whenever the kernel has it, so a light side
// that registered is always covered.
#pragma once

#include <atomic>

namespace ipc::base {

/// Whether this process skips the light side's fence (registered for the heavy side's
/// barriers). The first call registers.
bool light_fences();

/// The frequent side: a compiler barrier when light_fences(), else a full fence.
inline void light_fence() {
  static const bool light = light_fences();
  if (light)
    std::atomic_signal_fence(std::memory_order_seq_cst);
  else
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

/// The rare side: a full fence here and on every CPU running a registered process.
void heavy_fence();

}  // namespace ipc::base
