#include "ipc/runtime.hpp"

#include <cxxabi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <sstream>
#include <atomic>
#include <exception>
#include <chrono>
#include <iostream>
#include <forward_list>
#include <map>
#include <mutex>
#include <thread>

#include "bootstrap/bootstrap.hpp"
#include "collectives/shared.hpp"
#include "core/context.hpp"
#include "core/diagnostics.hpp"
#include "core/engine.hpp"
#include "base/errors.hpp"
#include "base/net.hpp"
#include "transport/registry.hpp"
#include "base/names.hpp"
#include "base/params.hpp"

namespace ipc {

namespace detail {

struct RuntimeImpl {
  bootstrap::JobInfo job;
  base::Doorbell doorbell;  // before everything that rings it or sleeps on it
  std::unique_ptr<bootstrap::Store> store;
  std::unique_ptr<transport::Transport> self;
  std::vector<std::unique_ptr<transport::Transport>> transports;
  std::vector<transport::Endpoint*> route;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<CollShared> collectives;
  std::unique_ptr<Communicator> world;
};

namespace {

std::atomic<bool> g_active{false};
std::string g_where = "ipc: rank ?";  // who this process is, for the terminate handler
std::terminate_handler g_previous_terminate = nullptr;

// An exception nobody caught ends the rank with one line that says which rank and
// what went wrong (instead of only "terminate called after ..."), then aborts.
[[noreturn]] void on_terminate() {
  if (auto e = std::current_exception()) {
    const char* type = "exception";
    int status = 0;
    char* demangled = nullptr;
    if (auto* t = abi::__cxa_current_exception_type()) {
      demangled = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
      type = status == 0 && demangled ? demangled : t->name();
    }
    // The message starts with this rank and host (ipc::Error), like the line: once.
    std::string origin = g_where.substr(5) + ": ";
    auto text = [&](const char* what) {
      return std::strncmp(what, origin.c_str(), origin.size()) == 0 ? what + origin.size() : what;
    };
    bool secondary = false;
    try {
      std::rethrow_exception(e);
    } catch (const PeerLost& ex) {
      secondary = true;
      std::fprintf(stderr, "%s: uncaught %s: %s\n", g_where.c_str(), type, text(ex.what()));
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "%s: uncaught %s: %s\n", g_where.c_str(), type, text(ex.what()));
    } catch (...) {
      std::fprintf(stderr, "%s: uncaught %s\n", g_where.c_str(), type);
    }
    std::free(demangled);
    std::fflush(stderr);
    if (secondary) {
      // This rank fails because another one did: give the launcher time to see the
      // first failure (and stop this rank), so that it reports the cause, not this.
      double grace = 0.5;
      try {
        grace = base::param_seconds("IPC_LOST_PEER_GRACE");
      } catch (...) {
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(grace));
    }
    std::abort();
  }
  if (g_previous_terminate) g_previous_terminate();
  std::abort();
}

std::vector<transport::PeerCard> collect_cards(const bootstrap::KeyValues& kv, int size) {
  std::vector<transport::PeerCard> cards;
  cards.reserve(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) {
    auto it = kv.find("card/" + std::to_string(r));
    if (it == kv.end()) throw BootstrapError("bootstrap: rank " + std::to_string(r) + " published no card");
    cards.push_back(transport::PeerCard::decode(r, it->second));
  }
  return cards;
}

void check_nodes(const std::vector<transport::PeerCard>& cards, int me) {
  const auto& mine = cards[static_cast<std::size_t>(me)];
  for (auto& c : cards) {
    if (c.node == mine.node && c.boot_id != mine.boot_id)
      throw BootstrapError("ranks " + std::to_string(me) + " and " + std::to_string(c.rank) +
                           " are both placed on node '" + mine.node +
                           "' but run on different machines (their boot ids differ)");
  }
}

// Start-up: every floor puts what its peers need before one fence (the transports
// their cards, the collectives their keys), reads the others' after it, and a second
// fence tells everyone that all have mapped what they need.
void start(RuntimeImpl& im) {
  // Until the job is known, an engine's own rank number names this process in errors.
  for (const char* var : {"IPC_RANK", "PMIX_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"})
    if (const char* v = std::getenv(var); v && *v) {
      g_where = std::string("ipc: rank ") + v + " (" + var + ")";
      break;
    }
  im.job = bootstrap::read_environment();
  g_where = "ipc: rank " + std::to_string(im.job.rank) + " on " + im.job.node;
  // Every ipc::Error from now on names this rank and host first (never freed: another
  // thread may be reading it).
  {
    // Kept for the process's life (a thread may still read an older one), reachable.
    static std::mutex mu;
    static std::forward_list<std::string> origins;
    std::lock_guard lk(mu);
    origins.push_front(g_where.substr(5) + ": ");
    error_origin().store(&origins.front(), std::memory_order_release);
  }
  auto allowed = transport::parse_list(base::param("IPC_TRANSPORTS"), "IPC_TRANSPORTS");
  im.store = bootstrap::open_store(im.job);

  transport::Config cfg;
  static_cast<base::JobPlace&>(cfg) = im.job;
  cfg.secret = im.job.secret;
  cfg.limits.max_payload = static_cast<std::uint64_t>(base::param_int("IPC_MAX_MESSAGE"));
  im.doorbell = base::Doorbell(base::doorbell_name(im.job.job, im.job.rank));
  cfg.doorbell = &im.doorbell;
  cfg.oversubscribed = WaitPolicy::from_params(im.job.local_size).oversubscribed;
  im.self = transport::open_self(cfg);
  if (im.job.size > 1) im.transports = transport::open(cfg, allowed);

  transport::PeerCard card;
  card.rank = im.job.rank;
  card.node = im.job.node;
  card.boot_id = net::boot_id();
  card.pid = static_cast<int>(::getpid());
  for (auto& t : im.transports) card.cards[std::string(t->name())] = t->card();
  im.store->put("card/" + std::to_string(im.job.rank), card.encode());
  CollSetup coll;
  bool single_copy = false;  // on this node (coll/pair)
  for (auto& t : im.transports) single_copy |= t->name() == "shm" && t->single_copy();
  coll.publish(*im.store, im.job, std::find(allowed.begin(), allowed.end(), "shm") != allowed.end(), single_copy);
  // Bounded by IPC_BOOTSTRAP_TIMEOUT: a rank that never starts or is stuck before its
  // Runtime must not hold the others for ever (the last fence, at the end, is not).
  auto startup = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(std::min(base::param_seconds("IPC_BOOTSTRAP_TIMEOUT"), 1e9)));
  auto startup_fence = [&] {
    try {
      return im.store->fence(startup);
    } catch (const Timeout&) {
      std::ostringstream s;
      s << "waited " << startup.count() / 1000.0
        << " s at start-up for the other ranks of the job (IPC_BOOTSTRAP_TIMEOUT): some did not start, or are "
           "stuck before creating their ipc::Runtime";
      throw Timeout(s.str());
    }
  };
  auto kv = startup_fence();
  auto cards = collect_cards(kv, im.job.size);
  check_nodes(cards, im.job.rank);
  im.route = transport::choose_routes(cards, im.job.rank, *im.self, im.transports);

  Engine::Options eo;
  eo.rank = im.job.rank;
  eo.size = im.job.size;
  eo.node = im.job.node;
  eo.route = im.route;
  for (auto& c : cards) eo.peer_nodes.push_back(c.node);
  eo.wait = WaitPolicy::from_params(im.job.local_size);
  eo.limits = cfg.limits;
  eo.doorbell = &im.doorbell;
  eo.progress_thread = base::param_bool("IPC_PROGRESS_THREAD");
  diag::install();  // before the engine: its sleepers watch the request's eventfd
  im.engine = std::make_unique<Engine>(std::move(eo));
  im.collectives = coll.finish(kv, cards, *im.engine, im.job, im.doorbell);
  im.world = std::make_unique<Communicator>(
      CommAccess::make(*im.engine, im.collectives.get(), 0, im.job.rank, im.job.size));
  im.collectives->world = collective_context(0);

  if (im.job.size > 1) {
    // Reports go before this second fence so that ipcrun prints them all at once;
    // after it every peer has mapped what it needs (shm unlinks its segment).
    if (base::param_bool("IPC_REPORT_TRANSPORTS"))
      for (int p = 0; p < im.job.size; ++p)
        im.store->report("transport " + std::to_string(im.job.rank) + " -> " + std::to_string(p) + ": " +
                         std::string(im.route[static_cast<std::size_t>(p)]->transport().name()));
    startup_fence();
    for (auto& t : im.transports) t->ready();
    coll.unlink();
  }
}

}  // namespace
}  // namespace detail

Runtime::Runtime() : impl_(std::make_unique<detail::RuntimeImpl>()) {
  if (detail::g_active.exchange(true)) throw UsageError("a Runtime already exists in this process");
  if (!detail::g_previous_terminate) detail::g_previous_terminate = std::set_terminate(detail::on_terminate);
  try {
    detail::start(*impl_);
  } catch (...) {
    impl_.reset();
    detail::diag::uninstall();
    detail::error_origin().store(nullptr, std::memory_order_release);
    detail::g_active.store(false);
    throw;
  }
}

Runtime::Runtime(int& argc, char**& argv) : Runtime() {
  (void)argc;
  (void)argv;
}

Runtime::~Runtime() {
  if (!impl_) return;
  auto& im = *impl_;
  try {
    // Leaving normally: deliver what is queued, then wait for every rank, so that no
    // rank closes connections a peer still needs. Unwinding from an error: just leave.
    if (im.engine && std::uncaught_exceptions() == 0) {
      detail::diag::set_phase("has ended its program: waits for its non-blocking collectives");
      im.engine->finish_async();
      im.engine->flush();
      detail::diag::set_phase("has ended its program: waits in the job's last fence for the other ranks");
      if (im.job.size > 1) im.store->fence();
    }
  } catch (const std::exception& e) {
    std::cerr << detail::g_where << ": while finishing the job: " << detail::without_origin(e.what()) << std::endl;
  }
  if (im.engine) im.engine->shutdown();
  im.world.reset();
  im.collectives.reset();
  im.engine.reset();
  im.transports.clear();
  im.self.reset();
  im.store.reset();
  impl_.reset();
  detail::diag::uninstall();
  detail::error_origin().store(nullptr, std::memory_order_release);
  detail::g_active.store(false);
}

Communicator& Runtime::world() { return *impl_->world; }
int Runtime::rank() const { return impl_->job.rank; }
int Runtime::size() const { return impl_->job.size; }
const std::string& Runtime::node() const { return impl_->job.node; }
const std::string& Runtime::job() const { return impl_->job.job; }

std::string Runtime::transport_to(int peer) const {
  if (peer < 0 || peer >= size()) throw UsageError("transport_to: no rank " + std::to_string(peer));
  return std::string(impl_->route[static_cast<std::size_t>(peer)]->transport().name());
}

}  // namespace ipc
