// The harness over this runtime.
#include <ipc/ipc.hpp>

#include <span>

#include "harness.hpp"

namespace {

class IpcBackend {
 public:
  static constexpr bool collectives = false;  // no collectives in the runtime yet
  using Req = ipc::Request;

  explicit IpcBackend(ipc::Communicator& c) : c_(c) {}
  int rank() const { return c_.rank(); }
  int size() const { return c_.size(); }
  void send(const char* p, std::size_t n, int peer) { c_.send(std::span<const char>(p, n), peer); }
  void recv(char* p, std::size_t n, int peer) { c_.recv(std::span<char>(p, n), peer); }
  Req isend(const char* p, std::size_t n, int peer) { return c_.isend(std::span<const char>(p, n), peer); }
  Req irecv(char* p, std::size_t n, int peer) { return c_.irecv(std::span<char>(p, n), peer); }
  void wait_all(std::vector<Req>& r) { ipc::wait_all(r); }
  // Dissemination barrier from point-to-point, on its own tag: synchronises the
  // ranks between measurements (never timed).
  void sync() {
    char b = 0;
    for (int d = 1; d < size(); d *= 2) {
      int to = (rank() + d) % size(), from = (rank() - d + size()) % size();
      auto r = c_.irecv(b, from, ipc::Tag{kSyncTag});
      c_.send(b, to, ipc::Tag{kSyncTag});
      r.wait();
    }
  }

 private:
  static constexpr int kSyncTag = 1 << 30;
  ipc::Communicator& c_;
};

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  IpcBackend b(rt.world());
  bench::run(b, bench::parse(argc, argv));
  return 0;
}
