// The harness over this runtime.
#include <ipc/ipc.hpp>

#include <algorithm>
#include <span>

#include "harness.hpp"

namespace {

class IpcBackend {
 public:
  static constexpr bool collectives = true;
  using Req = ipc::Request;

  explicit IpcBackend(ipc::Communicator& c) : c_(c) {}
  int rank() const { return c_.rank(); }
  int size() const { return c_.size(); }
  void send(const char* p, std::size_t n, int peer) { c_.send(std::span<const char>(p, n), peer); }
  void recv(char* p, std::size_t n, int peer) { c_.recv(std::span<char>(p, n), peer); }
  Req isend(const char* p, std::size_t n, int peer) { return c_.isend(std::span<const char>(p, n), peer); }
  Req irecv(char* p, std::size_t n, int peer) { return c_.irecv(std::span<char>(p, n), peer); }
  void wait_all(std::vector<Req>& r) { ipc::wait_all(r); }
  void sync() { c_.barrier(); }
  void barrier() { c_.barrier(); }
  void allreduce(const double* in, double* out, std::size_t n) {
    std::copy(in, in + n, out);
    c_.allreduce_inplace(std::span<double>(out, n));
  }
  void bcast(char* p, std::size_t n, int root) { c_.bcast(std::span<char>(p, n), root); }
  void allgather(const char* in, std::size_t n, char* out) {
    c_.allgather(std::span<const char>(in, n), std::span<char>(out, n * size()));
  }
  void alltoall(const char* in, std::size_t n, char* out) {
    c_.alltoall(std::span<const char>(in, n * size()), std::span<char>(out, n * size()));
  }

 private:
  ipc::Communicator& c_;
};

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  IpcBackend b(rt.world());
  bench::run(b, bench::parse(argc, argv));
  return 0;
}
