// The one place that knows which transports exist in this build, how to start them
// and how to choose one per peer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transport/transport.hpp"
#include "wire/frame.hpp"
#include "wire/secret.hpp"

namespace ipc::transport {

struct Config {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string job;
  wire::Secret secret{};
  wire::FrameLimits limits{};
  std::vector<std::string> allowed;  // in order of preference, without "self"
};

/// The transports this build has, in the default order of preference.
std::vector<std::string> available();
/// Parses a comma-separated list such as "shm,tcp". @throws ipc::UsageError naming
/// `what` (the option or variable) for an unknown or unavailable transport.
std::vector<std::string> parse_list(std::string_view text, std::string_view what);

/// Bytes of each shm ring for `local_size` ranks on a node (IPC_SHM_RING or auto).
std::size_t shm_ring_bytes(int local_size);

/// Starts the allowed transports (not self), in order of preference.
std::vector<std::unique_ptr<Transport>> open(const Config& cfg);
std::unique_ptr<Transport> open_self(int rank);

/// For each peer, the first transport that reaches it (self for own rank).
/// @throws ipc::Error naming the pair when none does.
std::vector<Transport*> choose_routes(const std::vector<PeerCard>& cards, int me, Transport* self,
                                      const std::vector<std::unique_ptr<Transport>>& transports);

}  // namespace ipc::transport
