// Every ipc::Error names the rank and host that threw it, the operation and the peer.
#include <ipc/ipc.hpp>

#include <string>
#include <vector>

#include "check.hpp"

namespace {

std::string where(const ipc::Runtime& rt, int rank) { return "rank " + std::to_string(rank) + " on " + rt.node(); }

void expect(int me, const std::string& what, const std::vector<std::string>& parts) {
  for (auto& p : parts) IT_CHECK(me, what.find(p) != std::string::npos, "'%s' does not say '%s'", what.c_str(), p.c_str());
}

}  // namespace

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank();
  if (c.size() != 2) return 2;
  std::string self = where(rt, me) + ": ";
  int peer = 1 - me;

  // Truncation: a double into an int.
  if (me == 1) c.send(2.5, 0, ipc::Tag{5});
  if (me == 0) {
    try {
      (void)c.recv<int>(1, ipc::Tag{5});
      IT_CHECK(me, false, "a double received as an int did not fail");
    } catch (const ipc::Truncation& e) {
      IT_CHECK(me, std::string(e.what()).rfind(self, 0) == 0, "%s", e.what());
      expect(me, e.what(), {"receive from " + where(rt, 1), "tag 5", "8 bytes"});
    }
  }
  // A message that does not deserialize as the type asked for.
  if (me == 0) c.send(std::string("abc"), 1, ipc::Tag{6});
  if (me == 1) {
    try {
      (void)c.recv<std::vector<std::string>>(0, ipc::Tag{6});
      IT_CHECK(me, false, "a string received as a vector of strings did not fail");
    } catch (const ipc::Truncation& e) {
      IT_CHECK(me, std::string(e.what()).rfind(self, 0) == 0, "%s", e.what());
      expect(me, e.what(), {"receive from " + where(rt, 0), "tag 6"});
    }
  }
  // Usage: a rank that does not exist, a negative tag, a bad root.
  try {
    c.send(1, 7);
    IT_CHECK(me, false, "a send to rank 7 of 2 did not fail");
  } catch (const ipc::UsageError& e) {
    IT_CHECK(me, std::string(e.what()).rfind(self, 0) == 0, "%s", e.what());
    expect(me, e.what(), {"send to rank 7"});
  }
  try {
    c.send(1, peer, ipc::Tag{-3});
    IT_CHECK(me, false, "a negative tag did not fail");
  } catch (const ipc::UsageError& e) {
    IT_CHECK(me, std::string(e.what()).rfind(self, 0) == 0, "%s", e.what());
    expect(me, e.what(), {"send", "-3"});
  }
  // A procedure that throws: the caller's rank first, then the rank it ran on.
  {
    ipc::Rpc rpc(c);
    rpc.define("fail", [](int) -> int { throw std::runtime_error("no luck"); });
    c.barrier();
    try {
      (void)rpc.call<int>(peer, "fail", 1).get();
      IT_CHECK(me, false, "a throwing procedure did not fail the call");
    } catch (const ipc::RemoteError& e) {
      IT_CHECK(me, std::string(e.what()).rfind(self, 0) == 0, "%s", e.what());
      expect(me, e.what(), {"call to " + where(rt, peer), "'fail'", "no luck"});
    }
  }
  c.barrier();
  return 0;
}
