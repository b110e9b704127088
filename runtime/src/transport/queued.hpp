// Shared by transports that queue frames: a frame that cannot leave at once keeps a
// copy of its payload, so that its sender may go on (eager sends never wait for the
// wire or for room in a ring).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

#include "transport/transport.hpp"

namespace ipc::transport {

/// `f` has payload (const std::byte*), length, owned (unique_ptr<std::byte[]>) and
/// done (Completion*): copies the payload into `owned` (unless the caller has already
/// copied it into a buffer of its own there) and completes the send.
template <class Frame>
void detach_payload(Frame& f) {
  if (f.length > 0 && !f.owned) {
    f.owned.reset(new std::byte[f.length]);
    std::memcpy(f.owned.get(), f.payload, f.length);
    f.payload = f.owned.get();
  }
  Completion* c = f.done;
  f.done = nullptr;
  if (c) c->complete({});
}

}  // namespace ipc::transport
