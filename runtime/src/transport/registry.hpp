// The transports of this build, how to start them and how to choose one per peer.
//
// Each transport registers itself: its folder defines a Descriptor
// (ipc::transport::<name>::descriptor) that names it and starts it, reading its own
// parameters (declared in its params.cpp); the build lists the folders
// (runtime/CMakeLists.txt, generated transport/list.hpp). Nothing here knows any
// transport by name.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transport/transport.hpp"

namespace ipc::transport {

/// A transport as the registry knows it.
struct Descriptor {
  std::string_view name;
  /// Starts it for this rank; null when it has nobody to reach (shm alone on its
  /// node). @throws ipc::Error (ipc::UsageError for a bad parameter) naming the cause.
  std::unique_ptr<Transport> (*open)(const Config& cfg);
};

/// The transports this build has besides self, in the default order of preference.
std::vector<std::string> available();
/// Parses a comma-separated list such as "shm,tcp". @throws ipc::UsageError naming
/// `what` (the option or variable) for an unknown or unavailable transport.
std::vector<std::string> parse_list(std::string_view text, std::string_view what);

/// Starts the transports named in `allowed` (not self), in that order.
std::vector<std::unique_ptr<Transport>> open(const Config& cfg, const std::vector<std::string>& allowed);
/// The self transport (a rank's messages to itself).
std::unique_ptr<Transport> open_self(const Config& cfg);

/// For each peer, the endpoint of the first transport that reaches it (self's for own
/// rank). @throws ipc::Error naming the pair when none does.
std::vector<Endpoint*> choose_routes(const std::vector<PeerCard>& cards, int me, Transport& self,
                                     const std::vector<std::unique_ptr<Transport>>& transports);

}  // namespace ipc::transport
