// hello: every rank says who and where it is.
//   ipcrun -n 4 ./hello
#include <ipc/ipc.hpp>

#include <cstdio>

int main() {
  ipc::Runtime rt;
  std::printf("hello from rank %d of %d on %s\n", rt.rank(), rt.size(), rt.node().c_str());
  return 0;
}
