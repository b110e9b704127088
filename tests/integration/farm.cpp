// The task farm: results in task order on 1 to 8 ranks (raw values and strings),
// progress lines, a worker that dies mid-farm (its tasks go to the others), a task
// that throws (rank 0 throws naming it, the workers stop), a journal that lets a
// second run skip what the first one finished, and a journal of another task list.
//   it_farm [die | batch]
#include <ipc/ipc.hpp>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank(), n = c.size();
  const bool die = argc > 1 && std::strcmp(argv[1], "die") == 0;
  if (argc > 1 && std::strcmp(argv[1], "batch") == 0) {
    // Batches stay within 32 KiB of tasks: tasks of 30,000 bytes go one per message
    // even once the worker asks for more at a time (run with IPC_MAX_MESSAGE=49152,
    // which refuses a message of two such tasks and so loses the only worker).
    std::vector<std::string> tasks(200, std::string(30000, 't'));
    for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i][0] = static_cast<char>('a' + i % 26);
    auto first = ipc::farm<char>(c, me == 0 ? tasks : std::vector<std::string>{},
                                 [](const std::string& t) { return t[0]; });
    if (me == 0)
      for (std::size_t i = 0; i < tasks.size(); ++i) IT_CHECK(me, first[i] == tasks[i][0], "batched result %zu", i);
    return 0;
  }

  std::vector<long> tasks(500);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = static_cast<long>(i);
  int got = 0;
  auto square = [&](const long& x) {
    // The last worker dies at its second task (every worker gets two at once): that
    // task and any other it held go to the others.
    if (die && me == n - 1 && ++got == 2) std::_Exit(0);
    if (x % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return x * x;
  };
  auto sq = ipc::farm<long>(c, me == 0 ? tasks : std::vector<long>{}, square, {.progress = true});
  if (me == 0) {
    IT_CHECK(me, sq.size() == tasks.size(), "results: %zu", sq.size());
    for (std::size_t i = 0; i < sq.size(); ++i) IT_CHECK(me, sq[i] == tasks[i] * tasks[i], "result %zu", i);
  } else {
    IT_CHECK(me, sq.empty(), "results on a worker");
  }
  if (die) return 0;  // a worker is gone: the final fence completes without it

  // Strings both ways.
  std::vector<std::string> words{"farm", "", "of", "words", std::string(5000, 'x')};
  auto lens = ipc::farm<std::string>(c, words, [](const std::string& w) { return w + "/" + std::to_string(w.size()); });
  if (me == 0)
    for (std::size_t i = 0; i < words.size(); ++i)
      IT_CHECK(me, lens[i] == words[i] + "/" + std::to_string(words[i].size()), "string result %zu", i);

  // Tasks and results above the eager limit (rendezvous both ways), several in flight.
  std::vector<std::string> bigs;
  for (int i = 0; i < 12; ++i) bigs.push_back(std::string(200000 + i, static_cast<char>('a' + i)));
  auto echoed = ipc::farm<std::string>(c, bigs, [](const std::string& s) { return s + s; }, {.in_flight = 3});
  if (me == 0)
    for (std::size_t i = 0; i < bigs.size(); ++i)
      IT_CHECK(me, echoed[i].size() == 2 * bigs[i].size() && echoed[i].back() == bigs[i].back(), "large %zu", i);

  // A task that throws: every rank throws naming it; then the same task list resumes
  // from the journal and runs only what is missing.
  std::string journal = std::string("/tmp/ipc-it-farm-") + rt.job() + ".journal";
  int runs = 0;
  auto flaky = [&](const long& x) -> long {
    ++runs;
    if (x == 300 && runs > 0 && ::access((journal + ".ok").c_str(), F_OK) != 0) throw std::runtime_error("not yet");
    if (x == 301 && runs > 0 && ::access((journal + ".ok").c_str(), F_OK) != 0) throw 42;  // not a std::exception
    return x + 1;
  };
  bool failed = false;
  try {
    ipc::farm<long>(c, tasks, flaky, {.journal = me == 0 ? journal : ""});
  } catch (const ipc::Error& e) {
    std::string what = e.what();
    failed = (what.find("task 300 failed on rank") != std::string::npos && what.find("not yet") != std::string::npos) ||
             what.find("task 301 failed on rank") != std::string::npos;
  }
  IT_CHECK(me, failed, "the failing task was not reported on this rank");
  if (me == 0) IT_CHECK(me, std::system(("touch " + journal + ".ok").c_str()) == 0, "touch");
  c.barrier();
  runs = 0;
  auto again = ipc::farm<long>(c, tasks, flaky, {.journal = me == 0 ? journal : ""});
  long ran = c.allreduce(static_cast<long>(runs));
  if (me == 0) {
    for (std::size_t i = 0; i < again.size(); ++i) IT_CHECK(me, again[i] == tasks[i] + 1, "resumed result %zu", i);
    IT_CHECK(me, again.size() == tasks.size() && ran < static_cast<long>(tasks.size()),
             "the second run redid %ld of %zu tasks", ran, tasks.size());
  }
  // The journal belongs to that task list.
  failed = false;
  try {
    ipc::farm<long>(c, std::vector<long>{1, 2, 3}, flaky, {.journal = me == 0 ? journal : ""});
  } catch (const ipc::Error& e) {
    failed = std::string(e.what()).find("another task list") != std::string::npos;
  }
  IT_CHECK(me, failed, "a journal of another task list was accepted (or not reported on this rank)");
  c.barrier();
  if (me == 0) std::system(("rm -f " + journal + " " + journal + ".ok").c_str());

  // Results that do not read as rank 0's Result (the workers return int, rank 0 wants
  // long): rank 0 throws a ProtocolError as the first one arrives, the workers stop
  // with its message.
  if (n > 1) {
    std::string what;
    bool protocol = false;
    try {
      if (me == 0)
        ipc::farm<long>(c, std::vector<long>(50, 1), [](const long& x) { return x; });
      else
        ipc::farm<int>(c, std::vector<long>{}, [](const long& x) { return static_cast<int>(x); });
    } catch (const ipc::ProtocolError& e) {
      protocol = true;
      what = e.what();
    } catch (const ipc::Error& e) {
      what = e.what();
    }
    IT_CHECK(me, what.find("a value of 4 bytes") != std::string::npos, "a mismatched result: '%s'", what.c_str());
    IT_CHECK(me, protocol == (me == 0), "rank %d threw %s", me, protocol ? "ProtocolError" : "another error");
    c.barrier();
  }
  return 0;
}
