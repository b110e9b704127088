#include "transport/self/self_transport.hpp"

#include "transport/registry.hpp"

namespace ipc::transport::self {

extern const Descriptor descriptor;
const Descriptor descriptor{"self", [](const Config& cfg) -> std::unique_ptr<Transport> {
                              return std::make_unique<SelfTransport>(cfg.rank);
                            }};

}  // namespace ipc::transport::self
