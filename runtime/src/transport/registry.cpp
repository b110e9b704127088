#include "transport/registry.hpp"

#include <algorithm>
#include <sstream>

#include "base/errors.hpp"
#include "transport/list.hpp"  // generated: IPC_FOR_EACH_TRANSPORT

namespace ipc::transport {

std::string PeerCard::encode() const {
  std::string s = "node=" + node + "\nboot=" + boot_id + "\npid=" + std::to_string(pid) + "\n";
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
    else if (key.rfind("t.", 0) == 0) c.cards[key.substr(2)] = value;
  }
  if (c.node.empty()) throw ProtocolError("bootstrap: the card of rank " + std::to_string(rank) + " names no node");
  return c;
}

#define IPC_DECLARE_TRANSPORT(name) \
  namespace name {                  \
  extern const Descriptor descriptor; \
  }
IPC_FOR_EACH_TRANSPORT(IPC_DECLARE_TRANSPORT)
#undef IPC_DECLARE_TRANSPORT

namespace {

#define IPC_LIST_TRANSPORT(name) &name::descriptor,
const Descriptor* const kBuilt[] = {IPC_FOR_EACH_TRANSPORT(IPC_LIST_TRANSPORT)};
#undef IPC_LIST_TRANSPORT

const Descriptor* find(std::string_view name) {
  for (const Descriptor* d : kBuilt)
    if (d->name == name) return d;
  return nullptr;
}

}  // namespace

std::vector<std::string> available() {
  std::vector<std::string> out;
  for (const Descriptor* d : kBuilt)
    if (d->name != "self") out.emplace_back(d->name);
  return out;
}

std::vector<std::string> parse_list(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  auto have = available();
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    auto item = std::string(text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty() || item == "self") continue;
    if (std::find(have.begin(), have.end(), item) == have.end()) {
      std::string list;
      for (auto& h : have) list += (list.empty() ? "" : ", ") + h;
      throw UsageError(std::string(what) + ": unknown or unavailable transport '" + item +
                       "' (this build has: self, " + list + ")");
    }
    out.push_back(item);
  }
  return out;
}

std::vector<std::unique_ptr<Transport>> open(const Config& cfg, const std::vector<std::string>& allowed) {
  std::vector<std::unique_ptr<Transport>> out;
  for (auto& name : allowed)
    if (const Descriptor* d = find(name))
      if (auto t = d->open(cfg)) out.push_back(std::move(t));
  return out;
}

std::unique_ptr<Transport> open_self(const Config& cfg) { return find("self")->open(cfg); }

std::vector<Endpoint*> choose_routes(const std::vector<PeerCard>& cards, int me, Transport& self,
                                     const std::vector<std::unique_ptr<Transport>>& transports) {
  std::vector<Endpoint*> route(cards.size(), nullptr);
  const PeerCard& mine = cards.at(static_cast<std::size_t>(me));
  for (std::size_t p = 0; p < cards.size(); ++p) {
    if (static_cast<int>(p) == me) {
      route[p] = &self.connect(mine);
      continue;
    }
    for (auto& t : transports) {
      if (t->reaches(mine, cards[p])) {
        route[p] = &t->connect(cards[p]);
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
