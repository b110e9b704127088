// Background progress: rank 0 starts a large send and then computes for a second
// without calling the library; the progress thread must move the message meanwhile,
// so that rank 1 receives it during the computation and the request is complete when
// rank 0 looks (Request::done() makes no progress of its own).
//   it_background            non-blocking sends, then posting while computing
//   it_background backlog    blocking sends left queued, then computing
//   it_background quiet      small messages to a rank that computes (shm)
#include <ipc/ipc.hpp>

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

// Blocking sends only: more eager messages than the ring or the sockets hold, so that
// copies stay queued in rank 0's transport; then rank 0 computes without calling the
// library. The progress thread must move them, so that rank 1, which starts receiving
// a little later, gets everything while rank 0 still computes. Rank 1 says so outside
// the library, with a file; rank 0 computes until it appears (30 s at most).
int backlog(ipc::Communicator& c, const std::string& job) {
  constexpr int kCount = 12000;  // 96 MiB (loopback TCP may buffer 36 MiB) in messages
                                 // that each fit one shm ring record
  std::vector<char> msg(8 * 1024, 'b');
  std::string done = "/tmp/ipc-backlog-" + job;
  if (c.rank() == 0) {
    c.recv<int>(1, ipc::Tag{1});
    for (int i = 0; i < kCount; ++i) c.send(msg, 1, ipc::Tag{2});
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < end) {  // no library calls
      volatile double x = 0;
      for (int i = 0; i < 100000; ++i) x = x + 1.0;
      seen = ::access(done.c_str(), F_OK) == 0;
    }
    std::remove(done.c_str());
    IT_CHECK(0, seen, "queued blocking sends did not move while the program computed (30 s)");
    c.send(1, 1, ipc::Tag{3});
  } else {
    c.send(1, 0, ipc::Tag{1});
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::vector<char> in;
    for (int i = 0; i < kCount; ++i) {
      c.recv(in, 0, ipc::Tag{2});
      IT_CHECK(1, in.size() == msg.size() && in[100] == 'b', "message %d", i);
    }
    if (std::FILE* f = std::fopen(done.c_str(), "w")) std::fclose(f);
    c.recv<int>(0, ipc::Tag{3});
  }
  return 0;
}

// Wake-ups (voluntary context switches) of this process's threads but the calling one,
// from /proc/self/task.
long other_threads_wakeups() {
  long sum = 0;
  const std::string self = std::to_string(::gettid());
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = ::readdir(d)) {
    std::string tid = e->d_name;
    if (tid == "." || tid == ".." || tid == self) continue;
    std::ifstream st("/proc/self/task/" + tid + "/status");
    for (std::string line; std::getline(st, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) sum += std::atol(line.c_str() + 24);
  }
  ::closedir(d);
  return sum;
}

// Small messages to a rank whose program computes: they wait in the ring for the
// program, and its progress thread is not woken for them (it sleeps for frames that
// need the rank to act: docs/transports.md, Waking). Rank 0 sends them one by one, 50
// us apart, long enough for a woken thread to fall asleep again in between; rank 1's
// other threads may wake for their naps (at most about one per millisecond), not once
// per message.
int quiet(ipc::Communicator& c, const std::string& job) {
  constexpr int kCount = 4000;  // 64-byte records: all fit one 512 KiB ring
  std::string done = "/tmp/ipc-quiet-" + job;
  if (c.rank() == 0) {
    c.recv<int>(1, ipc::Tag{1});
    volatile double x = 0;
    for (int i = 0; i < kCount; ++i) {
      c.send(i, 1, ipc::Tag{2});
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      while (std::chrono::steady_clock::now() < until) x = x + 1.0;
    }
    if (std::FILE* f = std::fopen(done.c_str(), "w")) std::fclose(f);
    c.recv<int>(1, ipc::Tag{3});
  } else {
    const long before = other_threads_wakeups();
    c.send(1, 0, ipc::Tag{1});
    const auto start = std::chrono::steady_clock::now();
    auto end = start + std::chrono::seconds(30);
    bool seen = false;
    volatile double x = 0;
    while (!seen && std::chrono::steady_clock::now() < end) {  // no library calls
      for (int i = 0; i < 10000; ++i) x = x + 1.0;
      seen = ::access(done.c_str(), F_OK) == 0;
    }
    const long wakeups = other_threads_wakeups() - before;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    std::remove(done.c_str());
    IT_CHECK(1, seen, "rank 0 did not finish sending (30 s)");
    IT_CHECK(1, before >= 0, "no /proc/self/task");
    std::printf("rank 1: %ld wake-ups of its other threads in %lld ms, %d messages\n", wakeups,
                static_cast<long long>(ms), kCount);
    IT_CHECK(1, wakeups <= 2 * ms + 200, "%ld wake-ups of the progress thread in %lld ms for %d messages that wait for the program",
             wakeups, static_cast<long long>(ms), kCount);
    for (int i = 0; i < kCount; ++i) IT_CHECK(1, c.recv<int>(0, ipc::Tag{2}) == i, "message %d", i);
    c.send(1, 0, ipc::Tag{3});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (c.size() != 2) return 2;
  if (argc > 1 && std::string(argv[1]) == "backlog") return backlog(c, rt.job());
  if (argc > 1 && std::string(argv[1]) == "quiet") return quiet(c, rt.job());
  std::vector<char> big(32u << 20, 'p');
  if (c.rank() == 0) {
    c.recv<int>(1, ipc::Tag{1});  // rank 1 is ready
    auto r = c.isend(big, 1, ipc::Tag{2});
    // Computes until the send is done (done() only reads its flag: no progress), for
    // 30 s at most: the progress thread moves it meanwhile, however loaded the machine.
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    volatile double x = 0;
    while (!r.done() && std::chrono::steady_clock::now() < end)
      for (int i = 0; i < 100000; ++i) x = x + 1.0;  // no library calls
    IT_CHECK(0, r.done(), "the send made no progress while the program computed (30 s)");
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
    end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!rs.front().done() && std::chrono::steady_clock::now() < end)
      for (int i = 0; i < 100000; ++i) x = x + 1.0;  // still no library calls
    IT_CHECK(0, rs.front().done(), "posted sends made no progress while the program computed (30 s)");
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
