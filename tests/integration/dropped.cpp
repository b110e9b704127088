// Requests let go of before they complete: the operation goes on in the background
// (request.hpp), its buffer must only stay valid. Handles own their requests and the
// engine's references own nothing, so a dropped, overwritten or copied handle must
// hand the request its own ownership until it completes, and free it then.
//   - rank 1 drops receives (eager and rendezvous) before rank 0 sends; later messages
//     of the same pair, which cannot overtake them, show when they have landed;
//   - rank 0 drops a large send (rendezvous) and an eager one right after starting them;
//   - a pending receive's handle is overwritten by another's (move assignment);
//   - a copy of a pending handle is waited for after the original was dropped;
//   - a handle of a receive that never completes outlives the runtime (the runtime
//     ends it: its handle must not reach for the engine when it goes).
#include <ipc/ipc.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "check.hpp"

namespace {

constexpr std::size_t kLarge = 1u << 20;  // rendezvous on every transport
constexpr int kRounds = 50;

bool filled(const std::vector<char>& v, char c) {
  for (char x : v)
    if (x != c) return false;
  return true;
}

}  // namespace

int main() {
  std::vector<char> never(16);
  ipc::Request outlives;  // destroyed after the runtime
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  const int me = c.rank();
  // Buffers of dropped operations live to the end (the program's duty).
  std::vector<std::unique_ptr<std::vector<char>>> keep;
  for (int round = 0; round < kRounds; ++round) {
    const char mark = static_cast<char>('a' + round % 26);
    if (me == 1) {
      auto& small = *keep.emplace_back(std::make_unique<std::vector<char>>(16, 0));
      auto& large = *keep.emplace_back(std::make_unique<std::vector<char>>(kLarge, 0));
      auto& first = *keep.emplace_back(std::make_unique<std::vector<char>>(16, 0));
      auto& second = *keep.emplace_back(std::make_unique<std::vector<char>>(16, 0));
      {
        (void)c.irecv(std::span<char>(small), 0, ipc::Tag{1});  // dropped at once
        ipc::Request r = c.irecv(std::span<char>(large), 0, ipc::Tag{2});
        r = c.irecv(std::span<char>(first), 0, ipc::Tag{3});  // the large one's handle overwritten
        ipc::Request copy = r;
        r = ipc::Request();  // the original of `copy` dropped
        c.send(round, 0, ipc::Tag{9});  // all posted: rank 0 may send
        copy.wait();
        IT_CHECK(1, filled(first, mark), "round %d: the copied handle's receive", round);
      }
      (void)c.irecv(std::span<char>(second), 0, ipc::Tag{4});  // dropped while rank 0 sends
      // Tag 5 follows tags 1, 2 and 4 on the same pair: once it is here, the eager ones
      // have landed; the rendezvous one by the time rank 0's send of it completed,
      // which rank 0 says with tag 6.
      c.recv<int>(0, ipc::Tag{5});
      c.recv<int>(0, ipc::Tag{6});
      IT_CHECK(1, filled(small, mark), "round %d: a dropped eager receive", round);
      IT_CHECK(1, filled(large, mark), "round %d: a dropped rendezvous receive", round);
      IT_CHECK(1, filled(second, mark), "round %d: a receive dropped while the send ran", round);
      // Sends rank 0 dropped: received in full.
      std::vector<char> in;
      c.recv(in, 0, ipc::Tag{7});
      IT_CHECK(1, in.size() == kLarge && filled(in, mark), "round %d: a dropped large send", round);
      c.recv(in, 0, ipc::Tag{8});
      IT_CHECK(1, in.size() == 16 && filled(in, mark), "round %d: a dropped eager send", round);
    } else {
      std::vector<char> small(16, mark), first(16, mark);
      auto& large = *keep.emplace_back(std::make_unique<std::vector<char>>(kLarge, mark));
      c.recv<int>(1, ipc::Tag{9});
      c.send(std::span<const char>(small), 1, ipc::Tag{1});
      ipc::Request big = c.isend(std::span<const char>(large), 1, ipc::Tag{2});
      c.send(std::span<const char>(first), 1, ipc::Tag{3});
      c.send(std::span<const char>(small), 1, ipc::Tag{4});
      c.send(round, 1, ipc::Tag{5});
      big.wait();
      c.send(round, 1, ipc::Tag{6});
      // Dropped sends: the buffers stay (large in `keep`, the eager one is copied).
      (void)c.isend(std::span<const char>(large), 1, ipc::Tag{7});
      auto& eager = *keep.emplace_back(std::make_unique<std::vector<char>>(16, mark));
      (void)c.isend(std::span<const char>(eager), 1, ipc::Tag{8});
    }
    if (round % 8 == 7) {  // what was dropped before has surely completed on both ranks
      c.barrier();
      keep.clear();
    }
  }
  c.barrier();
  outlives = c.irecv(std::span<char>(never), 1 - me, ipc::Tag{99});  // nobody sends it
  return 0;
}
