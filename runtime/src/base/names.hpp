// Names of the resources a job leaves in the system, in one place: the runtime makes
// them, the launcher finds and removes them after a crash.
//
//   /dev/shm/ipc-<job>-<rank>   a rank's shared-memory segment (shm transport)
//   /dev/shm/ipc-<job>-c        the node group's segment (collectives)
//   @ipc-<job>-<rank>           a rank's doorbell (abstract unix socket, no file)
//
// <job> is ipcrun's job id: 24 lower-case hex digits (pid and random bits), so that
// segments of different jobs never collide and cannot be guessed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ipc::base {

/// Hex digits of a job id.
inline constexpr std::size_t kJobIdDigits = 24;

/// "/ipc-<job>-<rank>": the shared-memory segment of `rank`.
std::string segment_name(std::string_view job, int rank);
/// "/ipc-<job>-c": the node group's segment.
std::string group_segment_name(std::string_view job);
/// "ipc-<job>-<rank>": the name of `rank`'s doorbell in the abstract socket namespace.
std::string doorbell_name(std::string_view job, int rank);

/// The job id of a name in /dev/shm (without the leading '/') made by segment_name or
/// group_segment_name; nullopt for any other name.
std::optional<std::string> job_of_segment(std::string_view file_name);

}  // namespace ipc::base
