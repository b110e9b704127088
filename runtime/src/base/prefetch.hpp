// Asking for a cache line ahead of a store into it. A line that another core has read
// since this one last wrote it (every line of a shared-memory ring: the consumer read
// it on the last lap) must be taken back before a store can land in it, a transfer
// between cores; a store that waits for that, at the head of the store buffer, holds
// up every store behind it. A write prefetch starts the transfer early, so that the
// store finds the line already this core's.
//
// On x86 that is PREFETCHW, which compilers emit for __builtin_prefetch(p, 1) only
// when told the target has it (GCC: -mprfchw, or an -march that includes it); built
// for plain x86-64 they emit a read prefetch instead, which brings the line shared
// and leaves the store's wait as it was. Hence the instruction itself, used only where
// CPUID says the CPU has it (AMD since the K8, Intel since Broadwell).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace ipc::base {

/// Whether prefetch_for_write() asks for the line for writing on this CPU.
inline bool write_prefetch_available() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool available = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0x80000001u, &a, &b, &c, &d) != 0 && (c & (1u << 8)) != 0;  // PRFCHW
  }();
  return available;
#else
  return true;
#endif
}

/// Asks for the cache line of `p` in a state this core can store into. A hint: it
/// never faults, whatever `p` is. Only where write_prefetch_available().
inline void prefetch_for_write(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

}  // namespace ipc::base
