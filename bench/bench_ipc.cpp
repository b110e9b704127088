// The harness over this runtime.
#include <ipc/ipc.hpp>

#include <cereal/types/vector.hpp>

#include <algorithm>
#include <optional>
#include <span>

#include "harness.hpp"

namespace {

class IpcBackend {
 public:
  static constexpr bool collectives = true;
  static constexpr bool tools = true;
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
  void allreduce_chars(const char* in, char* out, std::size_t n) {
    std::copy(in, in + n, out);
    c_.allreduce_inplace(std::span<char>(out, n));
  }
  void bcast(char* p, std::size_t n, int root) { c_.bcast(std::span<char>(p, n), root); }
  void allgather(const char* in, std::size_t n, char* out) {
    c_.allgather(std::span<const char>(in, n), std::span<char>(out, n * size()));
  }
  void alltoall(const char* in, std::size_t n, char* out) {
    c_.alltoall(std::span<const char>(in, n * size()), std::span<char>(out, n * size()));
  }
  void scatter(const char* in, std::size_t n, char* out, int root) {
    c_.scatter(std::span<const char>(in, n * size()), std::span<char>(out, n), root);
  }
  void reduce_scatter(const double* in, double* out, std::size_t n) {
    c_.reduce_scatter_block(std::span<const double>(in, n * size()), std::span<double>(out, n));
  }
  Req iallreduce(double* inout, std::size_t n) { return c_.iallreduce_inplace(std::span<double>(inout, n)); }
  void wait(Req& r) { r.wait(); }
  void tools_begin() {
    mutex_.emplace(c_);
    window_.emplace(c_, c_.rank() == 0 ? 1 : 0);
  }
  void tools_end() {
    window_.reset();
    mutex_.reset();
  }
  void lock() { mutex_->lock(); }
  void unlock() { mutex_->unlock(); }
  void fence() { window_->fence(); }

 private:
  ipc::Communicator& c_;
  std::optional<ipc::Mutex> mutex_;
  std::optional<ipc::SharedWindow<long>> window_;
};

// Channels (this runtime only): channel_latency, an 8-byte item from rank 0 to rank 1
// through one channel and back through another (half the round trip); channel_rate,
// rank 0 pushes into a channel of 1024 that rank 1 empties (items per second).
void channels(ipc::Communicator& c, const bench::Config& cfg) {
  int iters = bench::iterations(8, cfg.scale, 20000);
  if (cfg.want("channel_latency")) {
    ipc::Channel<long> there(c, 2), back(c, 2);
    std::vector<double> reps;
    for (int r = -1; r < cfg.repeats; ++r) {
      c.barrier();
      double t0 = bench::now_us();
      for (long i = 0; i < iters / 4; ++i) {
        if (c.rank() == 0) {
          there.push(i);
          (void)back.pop();
        } else if (c.rank() == 1) {
          back.push(*there.pop());
        }
      }
      if (r >= 0) reps.push_back((bench::now_us() - t0) / (iters / 4) / 2);
    }
    if (c.rank() == 0) bench::emit("channel_latency", 8, bench::median(reps), "us");
  }
  if (cfg.want("channel_rate")) {
    ipc::Channel<long> ch(c, 1024);
    std::vector<double> reps;
    for (int r = -1; r < cfg.repeats; ++r) {
      c.barrier();
      double t0 = bench::now_us();
      for (long i = 0; i < iters * 5; ++i) {
        if (c.rank() == 0) ch.push(i);
        if (c.rank() == 1) (void)ch.pop();
      }
      if (c.rank() == 1) c.send(0, 0);  // rank 0's clock stops when all are popped
      if (c.rank() == 0) c.recv<int>(1);
      if (r >= 0) reps.push_back(1e6 * iters * 5 / (bench::now_us() - t0));
    }
    if (c.rank() == 0) bench::emit("channel_rate", 8, bench::median(reps), "items/s");
  }
}

// Remote procedure calls (this runtime only): rank 0 calls "echo" on rank 1 with a
// vector of `bytes` and gets it back. rpc_latency: one call at a time, the whole round
// trip; rpc_rate: windows of 64 calls in flight, calls per second.
void rpc(ipc::Communicator& c, const bench::Config& cfg) {
  ipc::Rpc rpc(c);
  rpc.define("echo", [](std::vector<char> v) { return v; });
  c.barrier();
  for (std::size_t bytes : cfg.sizes) {
    std::vector<char> arg(bytes, 'r');
    if (cfg.want("rpc_latency")) {
      int iters = bench::iterations(bytes, cfg.scale, 1000);
      std::vector<double> reps;
      for (int r = -1; r < cfg.repeats; ++r) {
        c.barrier();
        double t0 = bench::now_us();
        for (int i = 0; i < iters && c.rank() == 0; ++i) rpc.call<std::vector<char>>(1, "echo", arg).get();
        if (r >= 0) reps.push_back((bench::now_us() - t0) / iters);
      }
      if (c.rank() == 0) bench::emit("rpc_latency", bytes, bench::median(reps), "us");
    }
    if (cfg.want("rpc_rate")) {
      const int window = 64;
      int rounds = std::max(2, bench::iterations(bytes, cfg.scale, 200) / 8);
      std::vector<double> reps;
      for (int r = -1; r < cfg.repeats; ++r) {
        c.barrier();
        double t0 = bench::now_us();
        for (int i = 0; i < rounds && c.rank() == 0; ++i) {
          std::vector<ipc::Future<std::vector<char>>> fs;
          for (int w = 0; w < window; ++w) fs.push_back(rpc.call<std::vector<char>>(1, "echo", arg));
          for (auto& f : fs) f.get();
        }
        if (r >= 0) reps.push_back(1e6 * window * rounds / (bench::now_us() - t0));
      }
      if (c.rank() == 0) bench::emit("rpc_rate", bytes, bench::median(reps), "calls/s");
    }
  }
}

// The task farm (this runtime only): 20,000 trivial tasks (an int in, an int out)
// with the default options, rank 0 handing them to the others; time per task.
void farm(ipc::Communicator& c, const bench::Config& cfg) {
  int tasks = std::max(100, static_cast<int>(20000 * cfg.scale));
  std::vector<int> in(c.rank() == 0 ? static_cast<std::size_t>(tasks) : 0);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i);
  std::vector<double> reps;
  for (int r = -1; r < cfg.repeats; ++r) {
    c.barrier();
    double t0 = bench::now_us();
    auto out = ipc::farm<int>(c, in, [](int x) { return x + 1; });
    if (r >= 0) reps.push_back((bench::now_us() - t0) / tasks);
    if (c.rank() == 0 && (out.size() != in.size() || out.back() != tasks)) std::abort();
  }
  if (c.rank() == 0) bench::emit("farm", 0, bench::median(reps), "us");
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  IpcBackend b(rt.world());
  auto cfg = bench::parse(argc, argv);
  bench::run(b, cfg);
  if (rt.size() >= 2 && (cfg.want("rpc_latency") || cfg.want("rpc_rate"))) rpc(rt.world(), cfg);
  if (!cfg.only.empty() && cfg.want("farm")) farm(rt.world(), cfg);
  if (rt.size() >= 2 && !cfg.only.empty() && (cfg.want("channel_latency") || cfg.want("channel_rate")))
    channels(rt.world(), cfg);
  return 0;
}
