// Asymmetric fences between processes: the frequent side of a store-then-load
// handshake (a shared-memory consumer handing back space, then looking whether the
// producer waits for it) skips its full fence, and the rare side (the producer about
// to sleep for room) pays for both with membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED),
// which runs a full barrier on every CPU that is running a thread of a process
// registered for it (a thread that is not running passed one when it was switched
// out). After the heavy side's barrier, a store the light side made before is
// visible, and a load the light side makes after sees what the heavy side stored
// before it: the handshake's guarantee, as with a fence on both sides.
//
// The light side may skip its fence only when its process registered
// (light_fences(): the first call registers; a kernel without the command, or a
// sandbox refusing it, keeps full fences); heavy_fence() issues the command whenever
// the kernel has it, so a light side that registered is always covered. Where the
// heavy side would run often (a sleeper that wakes and sleeps many times a second) the
// interrupts cost more than the fences they save: docs/transports.md, Waking.
#pragma once


namespace ipc::base {

/// Whether this process skips the light side's fence (registered for the heavy side's
/// barriers). The first call registers.
bool light_fences();

/// The rare side: a full fence here and on every CPU running a registered process.
void heavy_fence();

}  // namespace ipc::base
