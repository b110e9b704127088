#include "core/diagnostics.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/context.hpp"
#include "core/engine.hpp"

namespace ipc::detail {

OpNote& op_note() {
  thread_local OpNote note;
  return note;
}

CollectiveNote::CollectiveNote(Engine& e, std::uint32_t ctx, const char* op) : saved_(op_note()) {
  auto& n = op_note();
  n.coll = op;
  n.coll_ctx = ctx;
  n.coll_seq = e.enter_collective(ctx, op);
}

CollectiveNote::~CollectiveNote() { op_note() = saved_; }

namespace diag {
namespace {

std::atomic<bool> g_requested{false};
int g_fd = -1;
std::string g_mark;

void on_sigurg(int) {
  int saved = errno;
  g_requested.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  if (g_fd >= 0) (void)!::write(g_fd, &one, sizeof one);
  errno = saved;
}

}  // namespace

void install() {
  const char* m = std::getenv("IPC_DUMP_MARK");
  if (!m || !*m || g_fd >= 0) return;
  g_mark = m;
  g_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_fd < 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_sigurg;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGURG, &sa, nullptr);
}

void set_phase(const char* p);

void uninstall() {
  set_phase(nullptr);
  if (g_fd < 0) return;
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGURG, &sa, nullptr);
  ::close(g_fd);
  g_fd = -1;
}

int wake_fd() { return g_fd; }

bool take_request() {
  if (!g_requested.load(std::memory_order_acquire) || !g_requested.exchange(false)) return false;
  std::uint64_t n;
  while (g_fd >= 0 && ::read(g_fd, &n, sizeof n) > 0) {
  }
  return true;
}

const std::string& mark() { return g_mark; }

namespace {
std::atomic<const char*> g_phase{nullptr};
}
void set_phase(const char* p) { g_phase.store(p, std::memory_order_relaxed); }
const char* phase() { return g_phase.load(std::memory_order_relaxed); }

}  // namespace diag

std::string describe_context(std::uint32_t ctx) {
  std::string s;
  bool coll = ctx & kCollectiveBit;
  bool nonblocking = ctx & kNonblockingBit;
  std::uint32_t base = base_context(ctx);
  auto purpose = purpose_of(base);
  std::uint32_t number = base & kNumberMask;
  switch (purpose) {
    case Purpose::user:
      s = number == 0 && !grouped(base) ? "world" : "communicator " + std::to_string(number);
      break;
    case Purpose::rpc:
      s = "rpc #" + std::to_string(number);
      break;
    case Purpose::farm:
      s = "farm #" + std::to_string(number);
      break;
    case Purpose::tools:
      s = "semaphore/channel home #" + std::to_string(number);
      break;
    default:
      s = "context " + std::to_string(base);
  }
  if (ctx & kNodeBit) s += " (the ranks of this node)";
  if (ctx & kLeadersBit) s += " (the node leaders)";
  return nonblocking ? "non-blocking collectives of " + s : coll ? "collectives of " + s : s;
}

std::uint64_t Engine::enter_collective(std::uint32_t ctx, const char* op) {
  std::uint64_t seq = coll_seq_[(ctx ^ (ctx >> kPurposeShift)) % coll_seq_.size()].fetch_add(1, std::memory_order_relaxed) + 1;
  last_coll_op_.store(op, std::memory_order_relaxed);
  last_coll_ctx_.store(ctx, std::memory_order_relaxed);
  last_coll_seq_.store(seq, std::memory_order_relaxed);
  return seq;
}

void Engine::note_blocked(OpNote* note, bool on) {
  std::lock_guard lk(diag_mu_);
  if (on) {
    blocked_.push_back({note, std::chrono::steady_clock::now()});
    return;
  }
  for (auto it = blocked_.begin(); it != blocked_.end(); ++it)
    if (it->note == note) {
      blocked_.erase(it);
      return;
    }
}

namespace {

std::string peer_text(int p) { return p == kAnySource ? "any rank" : "rank " + std::to_string(p); }
std::string tag_text(int t) { return t == kAnyTag ? "any tag" : "tag " + std::to_string(t); }
std::string seconds(std::chrono::steady_clock::duration d) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", std::chrono::duration<double>(d).count());
  return b;
}

}  // namespace

void Engine::maybe_dump() {
  if (!diag::take_request()) return;
  std::vector<std::string> lines;
  std::string summary;
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(diag_mu_);
    if (blocked_.empty() && diag::phase()) {
      lines.push_back(diag::phase());
      summary = diag::phase();
    } else if (blocked_.empty()) {
      lines.push_back("not waiting in the library (computing, or between calls)");
      summary = "runs outside the library";
    }
    for (auto& b : blocked_) {
      const OpNote& n = *b.note;
      std::string what;
      if (n.req) {
        const RequestState& r = *n.req;
        bool recv = r.kind == RequestState::Kind::recv;
        what = recv ? "receive from " + peer_text(r.source) + ", " + tag_text(r.tag)
                    : "send of " + std::to_string(r.src.size) + " bytes to rank " + std::to_string(r.dest) + ", " +
                          tag_text(r.tag);
        what += ", on " + describe_context(r.comm);
      } else {
        what = n.what ? n.what
               : n.coll ? "a step over shared memory with the other ranks of this node"
                        : "a condition (a remote procedure's reply, the farm, ...)";
      }
      std::string in;
      if (n.coll)
        in = std::string(n.coll) + " #" + std::to_string(n.coll_seq) + " on " +
             describe_context(n.coll_ctx & ~kCollectiveBit);
      lines.push_back("blocked for " + seconds(now - b.since) + (in.empty() ? "" : " in " + in) + ": " + what);
      if (summary.empty()) {
        if (!in.empty())
          summary = "waits in " + in;
        else if (n.req && n.req->kind == RequestState::Kind::recv)
          summary = "waits in receive from " + peer_text(n.req->source) + " " + tag_text(n.req->tag) + " (" +
                    describe_context(n.req->comm) + ")";
        else if (n.req)
          summary = "waits in send to rank " + std::to_string(n.req->dest) + " " + tag_text(n.req->tag) + " (" +
                    describe_context(n.req->comm) + ")";
        else
          summary = "waits in " + what;
      }
    }
  }
  if (const char* op = last_coll_op_.load(std::memory_order_relaxed))
    lines.push_back(std::string("last collective entered: ") + op + " #" +
                    std::to_string(last_coll_seq_.load(std::memory_order_relaxed)) + " on " +
                    describe_context(last_coll_ctx_.load(std::memory_order_relaxed) & ~kCollectiveBit));
  else
    lines.push_back("last collective entered: none");
  {
    std::lock_guard lk(mu_);
    std::size_t shown = 0;
    lines.push_back("posted receives: " + std::to_string(queues_.posted_count()));
    queues_.for_each_posted([&](std::uint32_t comm, int source, int tag) {
      if (shown++ < 8) lines.push_back("  from " + peer_text(source) + ", " + tag_text(tag) + ", on " + describe_context(comm));
    });
    shown = 0;
    lines.push_back("unexpected messages: " + std::to_string(queues_.unexpected_count()));
    queues_.for_each_unexpected([&](const Unexpected& u) {
      if (shown++ < 8)
        lines.push_back("  from rank " + std::to_string(u.env.source) + ", " + tag_text(u.env.tag) + ", " +
                        std::to_string(u.size) + " bytes" + (u.rendezvous ? " (announced)" : "") + ", on " +
                        describe_context(u.env.comm));
    });
    lines.push_back("rendezvous in flight: " + std::to_string(rdv_sends_.size()) + " sends, " +
                    std::to_string(rdv_recvs_.size()) + " receives");
    std::string lost;
    for (int p = 0; p < opt_.size; ++p)
      if (!lost_[static_cast<std::size_t>(p)].empty()) lost += (lost.empty() ? "" : ", ") + std::to_string(p);
    if (!lost.empty()) lines.push_back("lost peers: " + lost);
    for (auto& [ctx, rv] : revoked_)
      lines.push_back("abandoned: " + describe_context(ctx) + " (" + rv.why + ")");
  }
  lines.push_back("summary: " + summary);
  lines.push_back("end");
  // One write per line: a line under PIPE_BUF never mixes with the program's own.
  const std::string& m = diag::mark();
  for (auto& l : lines) {
    std::string out = m + l.substr(0, 3000) + "\n";
    (void)!::write(2, out.data(), out.size());
  }
}

}  // namespace ipc::detail
