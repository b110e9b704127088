// Background progress: rank 0 starts a large send and then computes for a second
// without calling the library; the progress thread must move the message meanwhile,
// so that rank 1 receives it during the computation and the request is complete when
// rank 0 looks (Request::done() makes no progress of its own).
#include <ipc/ipc.hpp>

#include <chrono>
#include <vector>

#include "check.hpp"

int main() {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  std::vector<char> big(32u << 20, 'p');
  if (c.rank() == 0) {
    c.recv<int>(1, ipc::Tag{1});  // rank 1 is ready
    auto r = c.isend(big, 1, ipc::Tag{2});
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    volatile double x = 0;
    while (std::chrono::steady_clock::now() < end) x = x + 1.0;  // no library calls
    IT_CHECK(0, r.done(), "the send made no progress while the program computed");
    r.wait();
    // A program that only posts and computes (never waits until the end) keeps the
    // library busy-looking; its messages must move all the same.
    std::vector<char> chunk(1u << 20, 'q');
    std::vector<ipc::Request> rs;
    for (int i = 0; i < 100; ++i) {
      rs.push_back(c.isend(chunk, 1, ipc::Tag{3}));
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
      while (std::chrono::steady_clock::now() < until) x = x + 1.0;
    }
    IT_CHECK(0, rs.front().done(), "posted sends made no progress while the program computed");
    ipc::wait_all(rs);
  } else {
    c.send(1, 0, ipc::Tag{1});
    std::vector<char> in;
    c.recv(in, 0, ipc::Tag{2});
    IT_CHECK(1, in.size() == big.size() && in[12345] == 'p', "payload");
    for (int i = 0; i < 100; ++i) {
      c.recv(in, 0, ipc::Tag{3});
      IT_CHECK(1, in.size() == (1u << 20) && in[7] == 'q', "chunk %d", i);
    }
  }
  return 0;
}
