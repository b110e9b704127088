#include "collectives/p2p.hpp"



#include "collectives/shared.hpp"
#include "core/engine.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <vector>
#include "base/errors.hpp"

namespace ipc::detail {
namespace {

RecvTarget exact(void* data, std::size_t bytes) {
  return {[data, bytes](std::size_t n) -> void* {
            if (n != bytes)
              throw ProtocolError("collective: a step received " + std::to_string(n) + " bytes, expected " +
                                  std::to_string(bytes) + " (do all ranks call the same collective with the "
                                  "same sizes?)");
            return data;
          },
          {}};
}

}  // namespace

bool flat(const CollContext& c) { return c.shared && c.shared->flat; }

NodeGroup* node_group(const CollContext& c) {
  if (!c.shared || !c.shared->group) return nullptr;
  NodeGroup* g = c.shared->group.get();
  // Only the world's collective context (sub-communicators run over messages).
  return c.context == c.shared->world && g->size() == c.size ? g : nullptr;
}

void lost_in(const CollContext& c, const char* op, const PeerLost& e) {
  std::string why = c.engine->revoke(c.context, e.peer());
  throw PeerLost(std::string(op) + " failed: " + why, e.peer());
}

void coll_send(const CollContext& c, const void* data, std::size_t bytes, int dest, int tag) {
  c.engine->send(c.context, dest, tag, SendSource{data, bytes, {}});
}

void coll_recv(const CollContext& c, void* data, std::size_t bytes, int source, int tag) {
  c.engine->recv(c.context, source, tag, exact(data, bytes));
}

void coll_sendrecv(const CollContext& c, const void* out, std::size_t out_bytes, int dest, void* in,
                   std::size_t in_bytes, int source, int tag) {
  auto r = c.engine->irecv(c.context, source, tag, exact(in, in_bytes));
  try {
    c.engine->send(c.context, dest, tag, SendSource{out, out_bytes, {}});
  } catch (...) {
    c.engine->cancel_recv(*r);  // `in` goes away with the caller: nothing may land there
    throw;
  }
  c.engine->wait(*r);
}

void coll_exchange_all(const CollContext& c, const Transfer* xs, int n, int tag) {
  std::vector<std::shared_ptr<RequestState>> reqs;
  reqs.reserve(2 * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) reqs.push_back(c.engine->irecv(c.context, xs[i].peer, tag, exact(xs[i].in, xs[i].bytes)));
  for (int i = 0; i < n; ++i)
    reqs.push_back(c.engine->isend(c.context, xs[i].peer, tag, SendSource{xs[i].out, xs[i].bytes, {}}));
  // On a failure, withdraw the other receives and let the sends finish (they read the
  // caller's buffers) before the error leaves.
  std::exception_ptr first;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    try {
      if (first && i < static_cast<std::size_t>(n))
        c.engine->cancel_recv(*reqs[i]);
      else
        c.engine->wait(*reqs[i]);
    } catch (...) {
      if (!first) first = std::current_exception();
      for (std::size_t k = i + 1; k < static_cast<std::size_t>(n); ++k) c.engine->cancel_recv(*reqs[k]);
      i = std::max<std::size_t>(i, static_cast<std::size_t>(n) - 1);
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace ipc::detail
