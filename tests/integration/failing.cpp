// A job where one rank fails while the others block in a receive:
//   failing exit CODE RANK   rank RANK returns CODE
//   failing kill SIG RANK    rank RANK raises signal SIG
//   failing hang             every rank blocks forever (for --timeout)
//   failing leave CODE RANK  rank RANK exits with CODE, the others end normally
// Every rank writes its pid to $IT_PIDDIR/<rank> (when set) once the job is up.
#include <ipc/ipc.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  if (const char* dir = std::getenv("IT_PIDDIR")) {
    std::ofstream(std::string(dir) + "/" + std::to_string(c.rank())) << ::getpid() << "\n";
  }
  std::string mode = argc > 1 ? argv[1] : "hang";
  int value = argc > 2 ? std::atoi(argv[2]) : 0;
  int who = argc > 3 ? std::atoi(argv[3]) : 0;
  // Make sure every rank is up (and has written its pid) before one fails.
  if (c.rank() == 0) {
    for (int p = 1; p < c.size(); ++p) c.recv<int>(p, ipc::Tag{1});
    for (int p = 1; p < c.size(); ++p) c.send(1, p, ipc::Tag{2});
  } else {
    c.send(1, 0, ipc::Tag{1});
    c.recv<int>(0, ipc::Tag{2});
  }
  if (mode != "hang" && c.rank() == who) {
    if (mode == "exit" || mode == "leave") std::_Exit(value);
    if (mode == "kill") std::raise(value);
  }
  if (mode == "leave") return 0;  // the final fence must not wait for the rank that left
  int never = 0;
  c.recv(never, c.rank(), ipc::Tag{999});  // blocks until stopped, needing no peer
  return 0;
}
