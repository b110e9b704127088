// The RPC API's contract as a program meets it: typed handles convert their arguments;
// a call that arrives before its procedure is defined waits for the definition (no
// barrier); a refused call (unknown name, other signature) is an ipc::CallRefused with
// readable type names, apart from a procedure that threw; the farm's failure reaches
// every rank. Run with IPC_RPC_DEFINE_WAIT=1 (the refusal of an unknown name waits
// that long).
#include <ipc/ipc.hpp>

#include <cereal/types/string.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& w = rt.world();
  int me = w.rank(), n = w.size();
  int next = (me + 1) % n, prev = (me + n - 1) % n;
  {
    ipc::Rpc rpc(w);
    // Typed: ints convert to the procedure's longs, a literal to std::string.
    auto add = rpc.define("add", [](long a, long b) { return a + b; });
    auto greet = rpc.define("greet", [](std::string who) { return "hello " + who; });
    IT_CHECK(me, add.call(next, 1, 2).get() == 3, "typed add");
    IT_CHECK(me, greet.call(next, "you").get() == "hello you", "typed greet");
    auto all = ipc::when_all(add.call_all(me, 1)).get();
    IT_CHECK(me, all.size() == static_cast<std::size_t>(n) && all[0] == me + 1, "typed call_all");

    // By name with other types: refused, naming both signatures readably.
    try {
      rpc.call<long>(next, "add", 1, 2).get();
      IT_CHECK(me, false, "a call with int arguments to long(long, long) ran");
    } catch (const ipc::CallRefused& e) {
      std::string what = e.what();
      IT_CHECK(me, e.refused() && e.rank() == next, "refused(): %d", e.refused());
      IT_CHECK(me, what.find("defines it as long(long, long), called as long(int, int)") != std::string::npos, "%s",
               what.c_str());
    }
    try {
      rpc.call<std::string>(next, "greet", 5).get();
      IT_CHECK(me, false, "greet(int) ran");
    } catch (const ipc::CallRefused& e) {
      std::string what = e.what();
      IT_CHECK(me, what.find("std::string(std::string)") != std::string::npos &&
                       what.find("__cxx11") == std::string::npos && what.find("basic_string") == std::string::npos,
               "type names not readable: %s", what.c_str());
    }
    // A procedure that throws is a RemoteError that is not a refusal.
    rpc.define("fail", [](int) -> int { throw std::runtime_error("no luck"); });
    try {
      rpc.call<int>(next, "fail", 1).get();
      IT_CHECK(me, false, "a throwing procedure returned");
    } catch (const ipc::CallRefused& e) {
      IT_CHECK(me, false, "a throwing procedure was reported as refused: %s", e.what());
    } catch (const ipc::RemoteError& e) {
      IT_CHECK(me, !e.refused() && e.type() == "std::runtime_error" && e.message() == "no luck", "%s", e.what());
    }
    // An unknown name is refused once the definition wait has passed; the second time
    // too, when the request names it by its hash alone (the server learned the name).
    for (int round = 0; round < 2; ++round) {
      try {
        rpc.call<int>(next, "nowhere", 1).get();
        IT_CHECK(me, false, "an unknown procedure ran");
      } catch (const ipc::CallRefused& e) {
        std::string what = e.what();
        IT_CHECK(me, what.find("no procedure 'nowhere'") != std::string::npos &&
                         what.find("IPC_RPC_DEFINE_WAIT") != std::string::npos,
                 "%s", what.c_str());
      }
    }
  }
  {
    // Definition after the call has arrived: the caller tells the callee that its call
    // is on its way, and only then does the callee define the procedure.
    ipc::Rpc rpc(w);
    auto f = rpc.call<int>(next, "late", me);
    w.send(1, next, ipc::Tag{5});
    w.recv<int>(prev, ipc::Tag{5});
    rpc.define("late", [](int x) { return x * 10; });
    IT_CHECK(me, f.get() == me * 10, "a call made before the definition");
  }
  {
    // A procedure defined again: calls made after the new definition run it, also
    // right after many calls of the old one (the server remembers the procedure it
    // found last); replies of other sizes in a row, and futures dropped unread between
    // them (their buffers are used again by later calls).
    ipc::Rpc rpc(w);
    rpc.define("twice", [](std::vector<int> v) {
      for (auto& x : v) x *= 2;
      return v;
    });
    rpc.define("version", [] { return 1; });
    w.barrier();
    for (std::size_t len : {100u, 3u, 0u, 1000u, 1u, 57u}) {
      std::vector<int> v(len);
      for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<int>(i + len);
      rpc.call<std::vector<int>>(next, "twice", v);  // dropped
      auto got = rpc.call<std::vector<int>>(next, "twice", v).get();
      IT_CHECK(me, got.size() == len, "a reply of %zu ints has %zu", len, got.size());
      for (std::size_t i = 0; i < got.size(); ++i)
        IT_CHECK(me, got[i] == 2 * v[i], "reply %zu: element %zu is %d", len, i, got[i]);
    }
    for (int i = 0; i < 200; ++i) IT_CHECK(me, rpc.call<int>(next, "version").get() == 1, "version 1");
    w.barrier();  // every rank's calls of version 1 are answered
    rpc.define("version", [] { return 2; });
    w.barrier();
    IT_CHECK(me, rpc.call<int>(next, "version").get() == 2, "a procedure defined again still runs its old definition");
  }

  // A failed farm fails on every rank, with rank 0's message.
  std::vector<int> tasks(20);
  for (int i = 0; i < 20; ++i) tasks[static_cast<std::size_t>(i)] = i;
  std::string what;
  try {
    ipc::farm<int>(w, tasks, [](const int& t) -> int {
      if (t == 13) throw std::runtime_error("unlucky");
      return t;
    });
  } catch (const ipc::Error& e) {
    what = e.what();
  }
  IT_CHECK(me, what.find("farm: task 13 failed on rank") != std::string::npos && what.find("unlucky") != std::string::npos,
           "the farm's failure on this rank: '%s'", what.c_str());
  w.barrier();
  if (me == 0) std::printf("rpc_api: %d ranks ok\n", n);
  return 0;
}
