// The bootstrap under an engine (mpirun, srun --mpi=pmix): the job's shape and the
// ranks' cards through PMIx, the engine's own key-value exchange.
//
// Rank, size and this node's ranks come from the engine's placement (PMIX_JOB_SIZE,
// PMIX_LOCAL_RANK, PMIX_LOCAL_SIZE); the node id is the engine's host name of this
// rank (PMIX_HOSTNAME). The Store's pairs travel as one PMIx value per rank and fence
// ("ipc.kv.<n>": the pairs it put since the last fence); after PMIx_Fence (with
// PMIX_COLLECT_DATA) every rank reads every rank's and merges them. The job's secret
// (the TCP transport's handshake) is rank 0's, exchanged by a first fence. Reports
// (IPC_REPORT_TRANSPORTS) travel with the pairs, and rank 0 prints them, as ipcrun
// does for its jobs. PMIx itself is in the engines module, loaded here on the first
// call (engines/abi.hpp): programs started otherwise never load it.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <vector>

#include "base/errors.hpp"
#include "base/params.hpp"
#include "bootstrap/bootstrap.hpp"
#include "engines/abi.hpp"
#include "wire/bytes.hpp"

namespace ipc::bootstrap {
namespace {

// PMIx, through the engines module (loaded at the first use: engines/abi.hpp).
using engines::pmix;

std::string pmix_error(int rc) {
  const char* text = pmix().error_string(rc);
  return std::string(text ? text : "unknown status") + " (" + std::to_string(rc) + ")";
}

[[noreturn]] void fail(const std::string& what, int rc) {
  throw BootstrapError("bootstrap: PMIx: " + what + ": " + pmix_error(rc));
}

// The PMIx session of this process (PMIx_Init ... PMIx_Finalize).
struct Session {
  std::string nspace;
  std::uint32_t rank = 0;
  bool open = false;
};
Session g_session;

const char* const kNumberNames[] = {"PMIX_JOB_SIZE", "PMIX_LOCAL_RANK", "PMIX_LOCAL_SIZE"};

std::uint64_t get_number(int which) {
  std::uint64_t n = 0;
  int type = -1;
  int rc = pmix().number(which, &n, &type);
  if (rc != pmix().success)
    fail(std::string("getting ") + kNumberNames[which] + " of rank " + std::to_string(g_session.rank), rc);
  if (type >= 0)
    throw BootstrapError(std::string("bootstrap: PMIx: ") + kNumberNames[which] + " has an unexpected type " +
                         std::to_string(type));
  return n;
}

void put_bytes(const std::string& key, const std::string& bytes) {
  int step = 0;
  int rc = pmix().put_bytes(key.c_str(), bytes.data(), bytes.size(), &step);
  if (rc != pmix().success) fail((step == 0 ? "putting " : "committing ") + key, rc);
}

std::string get_bytes(int rank, const std::string& key) {
  std::string s;
  int rc = pmix().get_bytes(
      static_cast<std::uint32_t>(rank), key.c_str(),
      [](void* out, const char* data, std::size_t size) { static_cast<std::string*>(out)->assign(data, size); }, &s);
  if (rc != pmix().success) fail("getting " + key + " of rank " + std::to_string(rank), rc);
  return s;
}

void fence(std::chrono::milliseconds timeout) {
  int seconds = 0;
  if (timeout != std::chrono::milliseconds::max())
    seconds = static_cast<int>(std::clamp<long long>((timeout.count() + 999) / 1000, 1, 1 << 30));
  int rc = pmix().fence(seconds);
  if (rc == pmix().timeout)
    throw Timeout("bootstrap: waited " + std::to_string(timeout.count() / 1000.0) + " s in a PMIx fence for the other ranks");
  if (rc != pmix().success) fail("fence", rc);
}

// Names of shared segments and sockets: letters, digits, '-' and '_' only.
std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

// Length-prefixed pairs: the Store's, and the reports.
void append(std::string& out, const std::string& s) {
  auto n = static_cast<std::uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out += s;
}

class PmixStore final : public Store {
 public:
  PmixStore(int rank, int size) : rank_(rank), size_(size) {}
  ~PmixStore() override {
    if (g_session.open) {
      pmix().finalize();
      g_session.open = false;
    }
  }
  void put(const std::string& key, const std::string& value) override {
    std::lock_guard lk(mu_);
    pending_[key] = value;
  }
  std::string get(const std::string& key, std::chrono::milliseconds) override {
    std::lock_guard lk(mu_);
    auto it = kv_.find(key);
    if (it == kv_.end()) throw BootstrapError("bootstrap: no value for '" + key + "' (PMIx: pairs arrive at fences)");
    return it->second;
  }
  KeyValues fence(std::chrono::milliseconds timeout) override {
    std::lock_guard lk(mu_);
    std::string blob;
    for (auto& [k, v] : pending_) {
      append(blob, k);
      append(blob, v);
    }
    std::string reports;
    for (auto& r : reports_) append(reports, r);
    pending_.clear();
    reports_.clear();
    std::string key = "ipc.kv." + std::to_string(generation_), rkey = "ipc.rep." + std::to_string(generation_);
    ++generation_;
    put_bytes(key, blob);
    put_bytes(rkey, reports);
    bootstrap::fence(timeout);
    std::vector<std::string> lines;
    for (int r = 0; r < size_; ++r) {
      merge(get_bytes(r, key), [&](std::string k, std::string v) { kv_[std::move(k)] = std::move(v); });
      if (rank_ == 0) {
        std::string rep = get_bytes(r, rkey);
        for (std::size_t at = 0; at + 4 <= rep.size();) {
          std::uint32_t n = 0;
          std::memcpy(&n, rep.data() + at, 4);
          if (at + 4 + n > rep.size()) break;
          lines.push_back(rep.substr(at + 4, n));
          at += 4 + n;
        }
      }
    }
    for (auto& l : lines) std::fprintf(stderr, "[ipc] %s\n", l.c_str());
    if (!lines.empty()) std::fflush(stderr);
    return kv_;
  }
  using Store::fence;
  void report(const std::string& line) override {
    std::lock_guard lk(mu_);
    reports_.push_back(line);
  }

 private:
  template <class F>
  void merge(const std::string& blob, F&& add) {
    std::size_t at = 0;
    auto next = [&](std::string& out) {
      if (at + 4 > blob.size()) return false;
      std::uint32_t n = 0;
      std::memcpy(&n, blob.data() + at, 4);
      if (at + 4 + n > blob.size()) return false;
      out = blob.substr(at + 4, n);
      at += 4 + n;
      return true;
    };
    std::string k, v;
    while (next(k) && next(v)) add(std::move(k), std::move(v));
  }

  int rank_, size_;
  std::mutex mu_;
  KeyValues pending_, kv_;
  std::vector<std::string> reports_;
  int generation_ = 0;
};

}  // namespace

bool under_engine() {
  const char* ns = std::getenv("PMIX_NAMESPACE");
  return ns && *ns;
}

JobInfo engine_job() {
  char nspace[256];
  int rc = pmix().init(nspace, sizeof nspace, &g_session.rank);
  if (rc != pmix().success) fail("PMIx_Init (PMIX_NAMESPACE is set, but its server does not answer)", rc);
  g_session.open = true;
  g_session.nspace = nspace;
  JobInfo j;
  j.singleton = false;
  j.launcher = base::Launcher::engine;
  j.rank = static_cast<int>(g_session.rank);
  j.size = static_cast<int>(get_number(0));
  j.local_rank = static_cast<int>(get_number(1));
  j.local_size = static_cast<int>(get_number(2));
  char host[256];
  rc = pmix().hostname(host, sizeof host);
  if (rc != pmix().success) fail("getting PMIX_HOSTNAME of rank " + std::to_string(g_session.rank), rc);
  j.node = host;
  if (j.node.empty()) throw BootstrapError("bootstrap: PMIx gives no host name (PMIX_HOSTNAME) for this rank");
  j.job = "pmix-" + sanitize(g_session.nspace);
  if (j.rank < 0 || j.rank >= j.size || j.local_rank < 0 || j.local_rank >= j.local_size)
    throw BootstrapError("bootstrap: PMIx places rank " + std::to_string(j.rank) + " of " + std::to_string(j.size) +
                         " as local rank " + std::to_string(j.local_rank) + " of " + std::to_string(j.local_size));
  // The job's secret: rank 0's, through a first fence.
  if (j.rank == 0) {
    j.secret = wire::make_secret();
    put_bytes("ipc.secret", std::string(reinterpret_cast<const char*>(j.secret.data()), j.secret.size()));
  }
  fence(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(std::min(base::param_seconds("IPC_BOOTSTRAP_TIMEOUT"), 1e9))));
  if (j.rank != 0) {
    std::string s = get_bytes(0, "ipc.secret");
    if (s.size() != j.secret.size()) throw BootstrapError("bootstrap: PMIx: rank 0's job secret is malformed");
    std::memcpy(j.secret.data(), s.data(), s.size());
  }
  return j;
}

std::unique_ptr<Store> engine_store(const JobInfo& job) { return std::make_unique<PmixStore>(job.rank, job.size); }

}  // namespace ipc::bootstrap
