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
// does for its jobs.
#include <pmix.h>

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
#include "wire/bytes.hpp"

namespace ipc::bootstrap {
namespace {

std::string pmix_error(pmix_status_t rc) { return std::string(PMIx_Error_string(rc)) + " (" + std::to_string(rc) + ")"; }

[[noreturn]] void fail(const std::string& what, pmix_status_t rc) {
  throw BootstrapError("bootstrap: PMIx: " + what + ": " + pmix_error(rc));
}

// The PMIx session of this process (PMIx_Init ... PMIx_Finalize).
struct Session {
  pmix_proc_t me{};
  pmix_proc_t all{};
  bool open = false;
};
Session g_session;

pmix_value_t* get(const pmix_proc_t& who, const char* key, bool required = true) {
  pmix_value_t* v = nullptr;
  pmix_status_t rc = PMIx_Get(&who, key, nullptr, 0, &v);
  if (rc != PMIX_SUCCESS) {
    if (!required) return nullptr;
    fail(std::string("getting ") + key + " of rank " + std::to_string(who.rank), rc);
  }
  return v;
}

std::uint64_t get_number(const pmix_proc_t& who, const char* key) {
  pmix_value_t* v = get(who, key);
  std::uint64_t n = 0;
  switch (v->type) {
    case PMIX_UINT32: n = v->data.uint32; break;
    case PMIX_UINT16: n = v->data.uint16; break;
    case PMIX_UINT64: n = v->data.uint64; break;
    case PMIX_INT: n = static_cast<std::uint64_t>(v->data.integer); break;
    case PMIX_PROC_RANK: n = v->data.rank; break;
    default:
      PMIX_VALUE_RELEASE(v);
      throw BootstrapError(std::string("bootstrap: PMIx: ") + key + " has an unexpected type " + std::to_string(v->type));
  }
  PMIX_VALUE_RELEASE(v);
  return n;
}

std::string get_string(const pmix_proc_t& who, const char* key) {
  pmix_value_t* v = get(who, key);
  std::string s = v->type == PMIX_STRING && v->data.string ? v->data.string : "";
  PMIX_VALUE_RELEASE(v);
  return s;
}

void put_bytes(const std::string& key, const std::string& bytes) {
  pmix_value_t v;
  PMIX_VALUE_CONSTRUCT(&v);
  v.type = PMIX_BYTE_OBJECT;
  v.data.bo.bytes = const_cast<char*>(bytes.data());
  v.data.bo.size = bytes.size();
  pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key.c_str(), &v);
  if (rc != PMIX_SUCCESS) fail("putting " + key, rc);
  rc = PMIx_Commit();
  if (rc != PMIX_SUCCESS) fail("committing " + key, rc);
}

std::string get_bytes(int rank, const std::string& key) {
  pmix_proc_t who;
  PMIX_LOAD_PROCID(&who, g_session.me.nspace, static_cast<pmix_rank_t>(rank));
  pmix_value_t* v = get(who, key.c_str());
  std::string s;
  if (v->type == PMIX_BYTE_OBJECT) s.assign(v->data.bo.bytes, v->data.bo.size);
  PMIX_VALUE_RELEASE(v);
  return s;
}

void fence(std::chrono::milliseconds timeout) {
  pmix_info_t info[2];
  PMIX_INFO_CONSTRUCT(&info[0]);
  PMIX_INFO_CONSTRUCT(&info[1]);
  bool collect = true;
  PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  std::size_t n = 1;
  if (timeout != std::chrono::milliseconds::max()) {
    int seconds = static_cast<int>(std::max<long long>(1, (timeout.count() + 999) / 1000));
    PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &seconds, PMIX_INT);
    n = 2;
  }
  pmix_status_t rc = PMIx_Fence(&g_session.all, 1, info, n);
  PMIX_INFO_DESTRUCT(&info[0]);
  PMIX_INFO_DESTRUCT(&info[1]);
  if (rc == PMIX_ERR_TIMEOUT)
    throw Timeout("bootstrap: waited " + std::to_string(timeout.count() / 1000.0) + " s in a PMIx fence for the other ranks");
  if (rc != PMIX_SUCCESS) fail("fence", rc);
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
      PMIx_Finalize(nullptr, 0);
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
  pmix_status_t rc = PMIx_Init(&g_session.me, nullptr, 0);
  if (rc != PMIX_SUCCESS) fail("PMIx_Init (PMIX_NAMESPACE is set, but its server does not answer)", rc);
  g_session.open = true;
  PMIX_LOAD_PROCID(&g_session.all, g_session.me.nspace, PMIX_RANK_WILDCARD);
  JobInfo j;
  j.singleton = false;
  j.launcher = base::Launcher::engine;
  j.rank = static_cast<int>(g_session.me.rank);
  j.size = static_cast<int>(get_number(g_session.all, PMIX_JOB_SIZE));
  j.local_rank = static_cast<int>(get_number(g_session.me, PMIX_LOCAL_RANK));
  j.local_size = static_cast<int>(get_number(g_session.all, PMIX_LOCAL_SIZE));
  j.node = get_string(g_session.me, PMIX_HOSTNAME);
  if (j.node.empty()) throw BootstrapError("bootstrap: PMIx gives no host name (PMIX_HOSTNAME) for this rank");
  j.job = "pmix-" + sanitize(g_session.me.nspace);
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
