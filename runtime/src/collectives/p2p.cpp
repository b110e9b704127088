#include "collectives/p2p.hpp"



#include "collectives/shared.hpp"
#include "core/context.hpp"
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

const std::string& forced(const CollContext& c, CollOp op) {
  static const std::string none;
  return c.shared ? c.shared->force(op) : none;
}

NodeGroup* node_group(const CollContext& c) {
  if (!c.shared) return nullptr;
  if (c.context == c.shared->world) {
    NodeGroup* g = c.shared->group.get();
    return g && g->size() == c.size ? g : nullptr;
  }
  if (grouped(c.context) || purpose_of(c.context) == Purpose::user) {  // a communicator of its own
    std::lock_guard lk(c.shared->groups_mu);
    auto it = c.shared->groups.find(c.context);
    return it == c.shared->groups.end() ? nullptr : it->second.get();
  }
  return nullptr;
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
  std::vector<Take> recvs;
  std::vector<Move> sends;
  recvs.reserve(static_cast<std::size_t>(n));
  sends.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    recvs.push_back({xs[i].peer, xs[i].in, xs[i].bytes});
    sends.push_back({xs[i].peer, xs[i].out, xs[i].bytes});
  }
  coll_post_all(c, recvs.data(), n, sends.data(), n, tag);
}

void coll_post_all(const CollContext& c, const Take* recvs, int nr, const Move* sends, int ns, int tag) {
  std::vector<RequestRef> reqs;
  reqs.reserve(static_cast<std::size_t>(nr + ns));
  for (int i = 0; i < nr; ++i) reqs.push_back(c.engine->irecv(c.context, recvs[i].peer, tag, exact(recvs[i].data, recvs[i].bytes)));
  auto n = static_cast<std::size_t>(nr);
  std::exception_ptr first;
  try {
    for (int i = 0; i < ns; ++i)
      reqs.push_back(c.engine->isend(c.context, sends[i].peer, tag, SendSource{sends[i].data, sends[i].bytes, {}}));
  } catch (...) {
    first = std::current_exception();
  }
  // On a failure, withdraw the other receives and let the sends finish (they read the
  // caller's buffers) before the error leaves.
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    try {
      if (first && i < n)
        c.engine->cancel_recv(*reqs[i]);
      else
        c.engine->wait(*reqs[i]);
    } catch (...) {
      if (!first) first = std::current_exception();
      for (std::size_t k = i + 1; k < n; ++k) c.engine->cancel_recv(*reqs[k]);
      if (i < n) i = n - 1;
    }
  }
  if (first) std::rethrow_exception(first);
}

std::vector<std::byte> coll_recv_any(const CollContext& c, int source, int tag) {
  std::vector<std::byte> out;
  RecvTarget to{[&out](std::size_t n) -> void* {
                  out.resize(n);
                  return out.data();
                },
                {}};
  c.engine->recv(c.context, source, tag, to);
  return out;
}

}  // namespace ipc::detail
