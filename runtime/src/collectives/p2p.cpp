#include "collectives/p2p.hpp"

#include <string>

#include "wire/params.hpp"

#include "core/engine.hpp"

#include <memory>
#include <vector>
#include "ipc/errors.hpp"

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

bool flat(const CollContext& c) {
  static const int forced = [] {
    std::string v = wire::param("IPC_COLL_FLAT");
    return v == "auto" ? -1 : wire::param_bool("IPC_COLL_FLAT") ? 1 : 0;
  }();
  return forced >= 0 ? forced == 1 : c.engine->oversubscribed();
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
  c.engine->send(c.context, dest, tag, SendSource{out, out_bytes, {}});
  c.engine->wait(*r);
}

void coll_exchange_all(const CollContext& c, const Transfer* xs, int n, int tag) {
  std::vector<std::shared_ptr<RequestState>> reqs;
  reqs.reserve(2 * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) reqs.push_back(c.engine->irecv(c.context, xs[i].peer, tag, exact(xs[i].in, xs[i].bytes)));
  for (int i = 0; i < n; ++i)
    reqs.push_back(c.engine->isend(c.context, xs[i].peer, tag, SendSource{xs[i].out, xs[i].bytes, {}}));
  for (auto& r : reqs) c.engine->wait(*r);
}

}  // namespace ipc::detail
