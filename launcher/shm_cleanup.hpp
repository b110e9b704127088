// Shared-memory segments of jobs: /dev/shm/ipc-<job>-<rank>, where a job id is
// 8 hex digits of ipcrun's pid followed by 16 random hex digits.
//
// Ranks unlink their segments as soon as every peer has mapped them, so a job that
// runs leaves nothing behind even when its ranks are SIGKILLed. What a job that
// died during start-up left is removed by its ipcrun when the job ends, and, when
// ipcrun itself was SIGKILLed, by the next ipcrun of the same user (its ipcrun's pid
// is gone), or at once by `ipcrun --cleanup`.
#pragma once

#include <sys/types.h>

#include <string>

namespace ipc::launcher {

/// A fresh job id for this ipcrun.
std::string make_job_id();

/// Removes the segments of job `job`; returns how many.
int remove_job_segments(const std::string& job);

/// Removes segments of this user whose ipcrun is no longer running; returns how
/// many. `verbose` prints each one ("ipcrun: removed stale /dev/shm/...").
int remove_stale_segments(bool verbose);

}  // namespace ipc::launcher
