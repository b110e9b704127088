// How busy the machine's CPUs are right now, for a waiter deciding between yielding its
// CPU and sleeping (core/progress.cpp).
#pragma once

#include <string_view>

namespace ipc::base {

/// The count of runnable threads in a /proc/loadavg line ("0.52 0.58 0.59 3/412 12345"
/// gives 3), or -1 when the line does not have one.
int runnable_in_loadavg(std::string_view line);

/// Whether no thread waits for a CPU right now: the runnable threads (the caller's
/// included) are no more than the CPUs online. False when /proc/loadavg cannot be
/// read. One pread() of /proc/loadavg (a few microseconds).
bool cpus_to_spare();

}  // namespace ipc::base
