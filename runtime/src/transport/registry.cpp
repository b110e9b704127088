#include "transport/registry.hpp"

#include <cstdlib>

#include <algorithm>
#include <sstream>

#include "base/errors.hpp"
#include "transport/self/self_transport.hpp"
#include "transport/shm/shm_transport.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "base/params.hpp"

namespace ipc::transport {

std::string PeerCard::encode() const {
  std::string s = "node=" + node + "\nboot=" + boot_id + "\npid=" + std::to_string(pid) +
                  "\ncpus=" + std::to_string(cpus) + "\nflat=" + coll_flat + "\ngroup=" + node_group + "\n";
  for (auto& [name, card] : cards) s += "t." + name + "=" + card + "\n";
  return s;
}

PeerCard PeerCard::decode(int rank, std::string_view text) {
  PeerCard c;
  c.rank = rank;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw ProtocolError("bootstrap: the card of rank " + std::to_string(rank) + " has a malformed line '" + line + "'");
    auto key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "node") c.node = value;
    else if (key == "boot") c.boot_id = value;
    else if (key == "pid") c.pid = std::atoi(value.c_str());
    else if (key == "cpus") c.cpus = std::atoi(value.c_str());
    else if (key == "flat") c.coll_flat = value;
    else if (key == "group") c.node_group = value;
    else if (key.rfind("t.", 0) == 0) c.cards[key.substr(2)] = value;
  }
  if (c.node.empty()) throw ProtocolError("bootstrap: the card of rank " + std::to_string(rank) + " names no node");
  return c;
}

std::vector<std::string> available() { return {"shm", "tcp"}; }

std::vector<std::string> parse_list(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  auto have = available();
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    auto item = std::string(text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty() || item == "self") continue;
    bool known = false;
    for (auto& h : have) known |= h == item;
    if (!known) {
      std::string list;
      for (auto& h : have) list += (list.empty() ? "" : ", ") + h;
      throw UsageError(std::string(what) + ": unknown or unavailable transport '" + item +
                       "' (this build has: self, " + list + ")");
    }
    out.push_back(item);
  }
  return out;
}

// IPC_SHM_RING, or by default 512 KiB rings while a node's L² rings fit in 64 MiB,
// smaller ones (down to 64 KiB) beyond.
std::size_t shm_ring_bytes(int local_size) {
  if (base::param("IPC_SHM_RING") != "auto") return static_cast<std::size_t>(base::param_int("IPC_SHM_RING"));
  std::size_t l = static_cast<std::size_t>(local_size);
  std::size_t ring = (std::size_t{64} << 20) / (l * l);
  ring = std::clamp<std::size_t>(ring, 64 << 10, 512 << 10);
  return ring & ~std::size_t{4095};
}

std::vector<std::unique_ptr<Transport>> open(const Config& cfg) {
  std::vector<std::unique_ptr<Transport>> out;
  for (auto& name : cfg.allowed) {
    if (name == "shm") {
      if (cfg.local_size < 2) continue;  // nobody to reach on this node
      shm::Options o;
      o.rank = cfg.rank;
      o.size = cfg.size;
      o.job = cfg.job;
      o.local_rank = cfg.local_rank;
      o.local_size = cfg.local_size;
      o.ring_bytes = shm_ring_bytes(cfg.local_size);
      o.eager_limit = static_cast<std::size_t>(base::param_int("IPC_SHM_EAGER"));
      o.chunk = static_cast<std::size_t>(base::param_int("IPC_SHM_CHUNK"));
      o.cma = base::param_bool("IPC_SHM_CMA");
      o.limits = cfg.limits;
      out.push_back(std::make_unique<shm::ShmTransport>(o));
    } else if (name == "tcp") {
      tcp::Options o;
      o.rank = cfg.rank;
      o.size = cfg.size;
      o.secret = cfg.secret;
      o.bind_address = base::param("IPC_TCP_ADDR");
      o.eager_limit = static_cast<std::size_t>(base::param_int("IPC_TCP_EAGER"));
      o.buffer_bytes = static_cast<int>(base::param_int("IPC_TCP_BUFFER"));
      o.congestion = base::param("IPC_TCP_CC");
      o.congestion_required = std::getenv("IPC_TCP_CC") != nullptr;
      o.limits = cfg.limits;
      out.push_back(std::make_unique<tcp::TcpTransport>(o));
    }
  }
  return out;
}

std::unique_ptr<Transport> open_self(int rank) { return std::make_unique<self::SelfTransport>(rank); }

std::vector<Transport*> choose_routes(const std::vector<PeerCard>& cards, int me, Transport* self,
                                      const std::vector<std::unique_ptr<Transport>>& transports) {
  std::vector<Transport*> route(cards.size(), nullptr);
  const PeerCard& mine = cards.at(static_cast<std::size_t>(me));
  for (std::size_t p = 0; p < cards.size(); ++p) {
    if (static_cast<int>(p) == me) {
      route[p] = self;
      continue;
    }
    for (auto& t : transports) {
      if (t->reaches(mine, cards[p])) {
        route[p] = t.get();
        t->add_peer(cards[p]);
        break;
      }
    }
    if (!route[p]) {
      std::string allowed;
      for (auto& t : transports) allowed += (allowed.empty() ? "" : ",") + std::string(t->name());
      throw Error("no transport reaches rank " + std::to_string(p) + " on " + cards[p].node + " from rank " +
                  std::to_string(me) + " on " + mine.node + " (allowed: " + (allowed.empty() ? "none" : allowed) +
                  ")");
    }
  }
  return route;
}

}  // namespace ipc::transport
