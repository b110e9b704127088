// Remote procedure calls: the compiled half of rpc.hpp.
//
// An Rpc owns two private contexts (requests, replies), apart from the program's
// messages and from other Rpcs (core/context.hpp), and a server thread that receives
// requests from any rank (a blocking receive per turn, its request on the server's
// stack) and runs them. A call is
//   request  (tag 0: call, 1: post)  hash, id, name, signature, arguments  (Cereal)
//            (tag 4: call, 5: post)  hash, id, arguments: a procedure that this
//                                    thread named to that rank before
//   reply    (tag = id)              true, result   |   false, refused, type, message
// A request for a name not defined yet waits on the server (parked) until define()
// adds it (define() wakes the server with tag 3 from its own rank) or until
// IPC_RPC_DEFINE_WAIT has passed, so that no program needs a barrier between its
// definitions and the first calls.
// The caller posts the reply's receive right after it sends the request (a reply
// that comes first waits as an unexpected message). A handler that waits for a call
// of its own serves the posted receive meanwhile (nested calls, calls back and forth).
//
// Ending is collective: every rank counts the requests it sent and the requests it
// handled to the end; the destructor sums both over the world (allreduce) until two
// rounds in a row give the same sums and sent == handled, so nothing is in flight
// or running anywhere, and then stops its own server with a message to itself.
#include "ipc/rpc.hpp"  // floors: the compiled half of the public rpc.hpp (its templates call in here)

#include <cxxabi.h>

#include <array>
#include <deque>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>

#include "base/hash.hpp"
#include "base/params.hpp"
#include "core/context.hpp"
#include "core/pool.hpp"

namespace ipc::detail {
namespace {

constexpr int kCallTag = 0, kPostTag = 1, kStopTag = 2, kDefinedTag = 3, kCallByHashTag = 4, kPostByHashTag = 5;
bool is_call(int tag) { return tag == kCallTag || tag == kCallByHashTag; }

std::atomic<std::uint64_t> g_next_core{1};  // Rpcs of this process, numbered (named_before)

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  return s;
}

int reply_tag(std::uint64_t id) { return static_cast<int>(id & 0x7fffffffu); }

thread_local RpcCore* t_serving = nullptr;  // the Rpc whose server runs on this thread

// A kept buffer's room, taken for a message (emptied), and given back after (kept when
// it has more room than the one kept meanwhile, up to `max` bytes). Taking it leaves
// an empty one, so that a nested use takes a fresh one.
std::vector<std::byte> take_room(std::vector<std::byte>& kept) noexcept {
  std::vector<std::byte> b = std::move(kept);
  b.clear();
  return b;
}
void give_room(std::vector<std::byte>& kept, std::vector<std::byte>&& b, std::size_t max) noexcept {
  if (b.capacity() <= max && b.capacity() > kept.capacity()) kept = std::move(b);
}

}  // namespace

std::string readable_type(std::string_view name) {
  std::string s(name);
  auto replace_all = [&s](std::string_view from, std::string_view to) {
    for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
  };
  replace_all("std::__cxx11::", "std::");
  replace_all("std::__1::", "std::");
  replace_all("std::basic_string<char>", "std::string");
  replace_all("std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string");
  replace_all("std::basic_string_view<char>", "std::string_view");
  replace_all("std::basic_string_view<char, std::char_traits<char> >", "std::string_view");
  replace_all(" >", ">");
  // GCC's spellings of the integer types, as programs write them.
  replace_all("long long unsigned int", "unsigned long long");
  replace_all("long unsigned int", "unsigned long");
  replace_all("short unsigned int", "unsigned short");
  replace_all("long long int", "long long");
  replace_all("long int", "long");
  replace_all("short int", "short");
  return s;
}

std::uint64_t procedure_hash(std::string_view name, std::string_view signature) {
  const unsigned char separator = 0xff;  // never in a name: "ab"+"c" differs from "a"+"bc"
  std::uint64_t h = base::fnv1a(base::kFnvBasis, name.data(), name.size());
  h = base::fnv1a(h, &separator, 1);
  return base::fnv1a(h, signature.data(), signature.size());
}

class RpcCore {
  using Clock = std::chrono::steady_clock;

 public:
  explicit RpcCore(const Communicator& comm)
      : world_(comm),
        rank_(comm.rank()),
        size_(comm.size()),
        requests_(CommAccess::fresh(comm, Purpose::rpc)),
        replies_(CommAccess::fresh(comm, Purpose::rpc)),
        link_(std::make_shared<RpcLink>(comm)),
        uid_(g_next_core.fetch_add(1, std::memory_order_relaxed)) {
    link_->core.store(this);
    server_ = std::thread([this] { serve(); });
  }

  ~RpcCore() {
    // Unwinding from an error: no collective (it could pair with another one).
    if (std::uncaught_exceptions() == 0) {
      try {
        quiesce();
      } catch (const std::exception& e) {  // a rank is gone: nobody can agree any more
        std::cerr << "ipc: rank " << rank_ << ": ending remote procedures: " << without_origin(e.what()) << std::endl;
      }
    }
    link_->core.store(nullptr);
    try {
      requests_.send(0, rank_, Tag{kStopTag});
    } catch (const std::exception& e) {
      std::cerr << "ipc: rank " << rank_ << ": cannot stop the rpc server: " << without_origin(e.what()) << std::endl;
    }
    server_.join();
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::uint64_t uid() const { return uid_; }
  const Communicator& requests() const { return requests_; }
  const Communicator& replies() const { return replies_; }
  // Ids in blocks per thread: one atomic update per kIdBlock calls, not per call (the
  // reply's tag is the id's low 31 bits, unique among a rank's calls in flight as before).
  std::uint64_t next_id() {
    thread_local IdBlock b;
    if (b.core != uid_ || b.next == b.end) {
      b.next = next_id_.fetch_add(kIdBlock, std::memory_order_relaxed);
      b.end = b.next + kIdBlock;
      b.core = uid_;
    }
    return b.next++;
  }
  // Counted before the send (a peer may handle it before the sender returns); a send
  // that throws at once is taken back.
  void count_sent() { sent_.fetch_add(1, std::memory_order_seq_cst); }
  void uncount_sent() { sent_.fetch_sub(1, std::memory_order_seq_cst); }
  const std::shared_ptr<RpcLink>& link() const { return link_; }

  void define(const std::string& name, std::string signature, Handler h, DirectHandler direct = {}) {
    bool waiting;
    {
      std::lock_guard lk(procs_mu_);
      std::uint64_t hash = procedure_hash(name, signature);
      procs_[name] = Proc{std::move(signature), hash,
                          std::make_shared<Handlers>(Handlers{std::move(h), std::move(direct)})};
      defs_version_.fetch_add(1, std::memory_order_release);  // the server's cached lookup is stale
      waiting = parked_count_ > 0;  // counted under the same lock as the lookups
    }
    if (waiting) requests_.send(0, rank_, Tag{kDefinedTag});  // the server retries them
  }

  /// On the server thread, inside a handler: waits for `r` while serving requests,
  /// until `deadline`; true when `r` completed.
  bool wait_serving(const Request& r, std::chrono::steady_clock::time_point deadline) {
    if (!pending_.valid()) post_receive();  // (serve_one posts after the reply when it waited)
    for (;;) {
      if (r.done()) return true;
      if (!pending_.valid()) return CommAccess::wait_until(world_, [&] { return r.done(); }, deadline);
      if (!CommAccess::wait_until(world_, [&] { return r.done() || pending_.done(); }, deadline)) return false;
      serve_arrived();
    }
  }
  bool serving_here() const { return t_serving == this; }
  /// On the server thread: handles a request that has arrived, if any (a handler
  /// polling a future of its own with ready() or wait_for()).
  void serve_arrived() {
    if (!pending_.valid()) post_receive();  // (serve_one posts after the reply when it waited)
    if (pending_.done()) serve_one();
  }

 private:
  struct Handlers {
    Handler archived;
    DirectHandler direct;  // empty unless its types allow (detail::direct_wire)
  };
  struct Proc {
    std::string signature;
    std::uint64_t hash;  // of name and signature: what a call names
    std::shared_ptr<Handlers> handler;
  };

  // The buffer of a request handled before is used again when nothing else holds it
  // (a parked request keeps its own).
  std::shared_ptr<std::vector<std::byte>> take_buffer() {
    if (spare_ && spare_.use_count() == 1) return std::move(spare_);
    return std::make_shared<std::vector<std::byte>>();
  }
  void post_receive() {
    buf_ = take_buffer();
    pending_ = CommAccess::irecv_bytes(requests_, any_source, any_tag, buf_);
  }

  /// Takes the posted receive when complete and handles it; the next one is posted
  /// before or after (below). A receive that failed (its sender died mid-message) is
  /// dropped: the next one is posted by the next turn.
  void serve_one() {
    if (!pending_.valid()) post_receive();  // (the last one's post failed)
    auto req = std::move(pending_);
    auto msg = std::move(buf_);
    // Requests that queue up (this one was in before the server looked for it): the
    // next receive is posted first, so that they land in place. A server that waits
    // for each one answers first and posts after (the reply leaves 330 instructions
    // sooner; a handler that waits posts then: wait_serving).
    if (req.done()) post_receive();
    serve_taken(req, msg);
    if (!pending_.valid()) post_receive();
  }

  void serve_taken(Request& req, std::shared_ptr<std::vector<std::byte>>& msg) {
    Status st = req.wait();
    req = Request();  // lets go of its hold on the buffer
    serve_message(st, msg);
  }

  void serve_message(const Status& st, std::shared_ptr<std::vector<std::byte>>& msg) {
    if (st.tag.value == kStopTag && st.source == rank_) {
      stop_ = true;
      return;
    }
    if (st.tag.value == kDefinedTag && st.source == rank_) {
      retry_parked();
      return;
    }
    // Nested calls are served on this thread's stack, one frame set per level: past
    // kMaxNesting a request is refused with a RemoteError instead of running the
    // server out of stack (3,000 levels died of SIGSEGV; a sanitizer's frames are
    // several times larger, so the limit leaves room for them and for the handlers').
    ++depth_;
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    // The definition's wait starts now; the clock is read only for a request whose
    // procedure is not defined (handle()).
    if (handle(st.source, st.tag.value, *msg, depth_ > kMaxNesting, std::nullopt)) {
      handled_.fetch_add(1, std::memory_order_seq_cst);
      if (msg->capacity() <= kSpareBytes) spare_ = std::move(msg);  // a large one is not kept
    } else {
      parked_.push_back(Parked{st.source, st.tag.value, std::move(msg), Clock::now() + define_wait_});
    }
  }

  /// Runs the parked requests whose procedure is now defined, refuses those whose
  /// wait has ended, parks the others again.
  void retry_parked() {
    std::deque<Parked> again;
    again.swap(parked_);
    {
      std::lock_guard lk(procs_mu_);
      parked_count_ = 0;  // those still undefined count themselves again in handle()
    }
    for (auto& p : again) {
      if (handle(p.source, p.tag, *p.msg, false, p.deadline))
        handled_.fetch_add(1, std::memory_order_seq_cst);
      else
        parked_.push_back(std::move(p));
    }
  }

  void serve() {
    t_serving = this;
    CommAccess::poll_for_peers_on_this_thread();
    while (!stop_) {
      try {
        if (parked_.empty() && !pending_.valid()) {
          // The common turn: a blocking receive, its request on this stack (none on
          // the heap, no reference counts); requests that come meanwhile wait in the
          // engine's queue of unexpected messages, taken by the next turn.
          auto msg = take_buffer();
          Status st = CommAccess::recv_bytes(requests_, any_source, any_tag, *msg);
          serve_message(st, msg);
          continue;
        }
        // Requests parked (a bounded wait, for the earliest one's deadline), or a
        // receive posted by a handler that served while it waited (wait_serving).
        if (!pending_.valid()) post_receive();
        if (!parked_.empty()) {
          auto first = parked_.front().deadline;
          for (auto& p : parked_) first = std::min(first, p.deadline);
          if (!CommAccess::wait_until(world_, [&] { return pending_.done(); }, first)) {
            retry_parked();
            continue;
          }
        }
        auto req = std::move(pending_);
        auto msg = std::move(buf_);
        serve_taken(req, msg);
      } catch (const std::exception& e) {
        std::cerr << "ipc: rank " << rank_ << ": rpc server: " << without_origin(e.what()) << std::endl;
      }
    }
  }

  // Two rounds in a row with the same sums, and as many requests handled as sent.
  void quiesce() {
    std::array<std::uint64_t, 2> last{~0ull, 0};
    for (int round = 0;; ++round) {
      std::array<std::uint64_t, 2> now{sent_.load(std::memory_order_acquire), handled_.load(std::memory_order_acquire)};
      world_.allreduce_inplace(std::span<std::uint64_t>(now));
      if (now == last && now[0] == now[1]) return;
      last = now;
      // Calls are still running somewhere: let them go on for a while (this rank's
      // own server meanwhile runs on its thread) before the next round.
      if (round > 0) {
        auto pause = std::chrono::microseconds(round < 20 ? 50 : 1000);
        CommAccess::wait_until(world_, [] { return false; }, std::chrono::steady_clock::now() + pause);
      }
    }
  }

  // Runs or refuses a request; false (nothing done) when its procedure is not defined
  // yet and `deadline` (now + the definition's wait, when none) has not passed: the
  // caller parks it.
  bool handle(int source, int tag, const std::vector<std::byte>& msg, bool too_deep,
              std::optional<Clock::time_point> deadline) {
    const bool call = is_call(tag);
    const bool by_hash = tag == kCallByHashTag || tag == kPostByHashTag;
    std::uint64_t hash = 0, id = 0;
    std::uint32_t nlen = 0, slen = 0;
    std::string_view name, sig;
    std::size_t args_at = by_hash ? kHashRequestHead : kRequestHead;
    if (by_hash) {
      if (msg.size() >= kHashRequestHead) {
        std::memcpy(&hash, msg.data(), 8);
        std::memcpy(&id, msg.data() + 8, 8);
      }
    } else if (msg.size() >= kRequestHead) {
      std::memcpy(&hash, msg.data(), 8);
      std::memcpy(&id, msg.data() + 8, 8);
      std::memcpy(&nlen, msg.data() + 16, 4);
      std::memcpy(&slen, msg.data() + 20, 4);
      if (static_cast<std::uint64_t>(nlen) + slen <= msg.size() - kRequestHead) {
        const char* text = reinterpret_cast<const char*>(msg.data()) + kRequestHead;
        name = std::string_view(text, nlen);
        sig = std::string_view(text + nlen, slen);
        args_at += static_cast<std::size_t>(nlen) + slen;
      } else {
        args_at = msg.size() + 1;  // malformed, below
      }
    }
    // The texts of a procedure named by its hash alone: those its first request had.
    bool named = !by_hash;
    auto learn_names = [&] {
      if (named) return true;
      auto it = learned_.find(hash);
      if (it == learned_.end()) return false;
      name = it->second.first;
      sig = it->second.second;
      return named = true;
    };
    if (!by_hash && args_at <= msg.size() && !learned_.contains(hash))
      learned_.emplace(hash, std::pair{std::string(name), std::string(sig)});
    // The reply's buffer: the one of the request handled before (taken, so that a
    // nested request handled meanwhile uses its own).
    std::vector<std::byte> out = take_room(out_spare_);
    struct GiveBack {
      std::vector<std::byte>& out;
      std::vector<std::byte>& spare;
      ~GiveBack() { give_room(spare, std::move(out), kSpareBytes); }
    } give_back{out, out_spare_};
    std::string type, what;
    bool failed = false, refused = false;
    try {
      if (args_at > msg.size())
        throw std::runtime_error("a request of " + std::to_string(msg.size()) + " bytes, its head names more");
      std::shared_ptr<Handlers> h;
      std::string have;  // its signature here, when the call's differs
      bool same = false;
      // The procedure called last, while no definition changed since: without the
      // lock and the name's lookup (a loop of calls to one procedure).
      std::uint64_t version = defs_version_.load(std::memory_order_acquire);
      if (cached_ && version == cached_version_ && hash == cached_hash_ && (by_hash || name == cached_name_)) {
        h = cached_;
        same = true;
      } else {
        if (version != cached_version_) cached_.reset();  // a definition replaced is let go of here
        if (!learn_names())
          throw std::runtime_error("it names its procedure by a hash that no earlier request to rank " +
                                   std::to_string(rank_) + " named");
        std::lock_guard lk(procs_mu_);
        auto it = procs_.find(std::string(name));
        if (it != procs_.end()) {
          h = it->second.handler;
          same = it->second.hash == hash;
          if (!same) {
            have = it->second.signature;
          } else {
            cached_ = h;
            cached_hash_ = hash;
            cached_name_ = name;
            cached_version_ = defs_version_.load(std::memory_order_relaxed);  // under the lock: current
          }
        } else if (auto now = Clock::now(); !too_deep && now < deadline.value_or(now + define_wait_)) {
          ++parked_count_;  // under the lock: a define() from now on wakes the server
          return false;
        }
      }
      if (too_deep) {
        failed = refused = true;
        what = "calls nested more than " + std::to_string(kMaxNesting) + " deep on rank " + std::to_string(rank_) +
               " (each waits for the next)";
      } else if (!h) {
        failed = refused = true;
        what = "no procedure '" + std::string(name) + "' is defined on rank " + std::to_string(rank_) + " (waited " +
               define_wait_text_ + " s for its definition: IPC_RPC_DEFINE_WAIT)";
      } else if (!same) {
        failed = refused = true;
        what = "rank " + std::to_string(rank_) + " defines it as " + have + ", called as " + std::string(sig);
      } else {
        try {
          out.reserve(64);
          std::span<const std::byte> args(msg.data() + args_at, msg.size() - args_at);
          if (h->direct) {
            out.push_back(std::byte{1});  // as Cereal writes `true`
            if (!h->direct(args, out)) {
              learn_names();
              throw std::runtime_error("its arguments do not decode as " + std::string(sig));
            }
          } else {
            SpanSource src(args.data(), args.size());
            InStream is(&src);
            cereal::BinaryInputArchive in(*is);
            VectorSink sink(out);
            OutStream os(&sink);
            cereal::BinaryOutputArchive ar(*os);
            ar(true);
            h->archived(in, ar);
          }
        } catch (const std::exception& e) {
          failed = true;
          type = demangle(typeid(e).name());
          what = e.what();
        } catch (...) {
          failed = true;
          type = "an exception of unknown type";
        }
      }
    } catch (const std::exception& e) {
      failed = refused = true;
      what = std::string("malformed request: ") + e.what();
    }
    if (failed) {
      out.clear();
      VectorSink sink(out);
      OutStream os(&sink);
      cereal::BinaryOutputArchive ar(*os);
      ar(false, refused, type, what);
    }
    if (!call) {
      if (failed && !learn_names()) name = "(unknown)";
      if (failed)
        std::cerr << "ipc: rank " << rank_ << ": procedure '" << name << "' posted by rank " << source << " "
                  << (refused ? "refused: " : type.empty() ? "failed: " : "threw " + type + ": ") << what << std::endl;
      return true;
    }
    try {
      replies_.send(out, source, Tag{reply_tag(id)});
    } catch (const std::exception&) {  // the caller is gone
    }
    return true;
  }

  Communicator world_;
  int rank_;
  int size_;
  Communicator requests_;
  Communicator replies_;
  struct IdBlock {
    std::uint64_t core = 0, next = 0, end = 0;
  };
  static constexpr std::uint64_t kIdBlock = 1024;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> sent_{0};     // requests this rank sent (calls and posts)
  std::atomic<std::uint64_t> handled_{0};  // requests this rank's server finished
  std::shared_ptr<RpcLink> link_;
  std::uint64_t uid_;
  // Server thread only: the name and signature of every procedure a request named,
  // by hash, for the requests that carry the hash alone.
  std::unordered_map<std::uint64_t, std::pair<std::string, std::string>> learned_;
  std::mutex procs_mu_;
  std::unordered_map<std::string, Proc> procs_;
  int parked_count_ = 0;  // requests waiting for their procedure's definition (procs_mu_)
  std::atomic<std::uint64_t> defs_version_{0};  // how many define()s so far
  struct Parked {
    int source;
    int tag;
    std::shared_ptr<std::vector<std::byte>> msg;
    Clock::time_point deadline;
  };
  std::deque<Parked> parked_;  // server thread only
  std::string define_wait_text_ = base::param("IPC_RPC_DEFINE_WAIT");
  Clock::duration define_wait_ = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(base::param_seconds("IPC_RPC_DEFINE_WAIT")));
  // Server thread only:
  Request pending_;  // the posted receive for requests
  std::vector<std::byte> out_spare_;  // the last reply's buffer, for the next
  // The procedure found last (handle()), valid while defs_version_ is cached_version_.
  std::shared_ptr<Handlers> cached_;
  std::uint64_t cached_hash_ = 0;
  std::string cached_name_;
  std::uint64_t cached_version_ = 0;
  std::shared_ptr<std::vector<std::byte>> buf_;
  std::shared_ptr<std::vector<std::byte>> spare_;  // a handled request's buffer, for the next
  static constexpr std::size_t kSpareBytes = 64 * 1024;
  bool stop_ = false;
  std::thread server_;
  static constexpr int kMaxNesting = 400;  // requests served inside handlers, on the server's stack
  int depth_ = 0;                           // requests being handled on the server thread now
};

std::uint64_t next_call_id(RpcCore& core) { return core.next_id(); }
const std::shared_ptr<RpcLink>& link_of(RpcCore& core) { return core.link(); }

namespace {
// Per thread: buffers of ended calls (replies) and the last request's bytes.
constexpr std::size_t kKeptBufferBytes = 4096;  // larger ones are not kept
constexpr std::size_t kKeptReplies = 64;
thread_local std::vector<std::shared_ptr<std::vector<std::byte>>> t_replies;
thread_local std::vector<std::byte> t_request;
}  // namespace

void* call_block_get() { return FreeList<kCallBlock, alignof(std::max_align_t)>::get(); }
void call_block_put(void* p) noexcept { FreeList<kCallBlock, alignof(std::max_align_t)>::put(p); }

std::shared_ptr<std::vector<std::byte>> reply_buffer() {
  if (t_replies.empty()) return std::make_shared<std::vector<std::byte>>();
  auto b = std::move(t_replies.back());
  t_replies.pop_back();
  return b;
}

void recycle_reply_buffer(std::shared_ptr<std::vector<std::byte>> b) noexcept {
  // (Called once the reply has landed and its receive has let go: nothing else holds
  // it then, and the count is a check.)
  if (!b || b.use_count() != 1 || b->capacity() > kKeptBufferBytes || t_replies.size() >= kKeptReplies) return;
  if (t_replies.capacity() < kKeptReplies) {
    try {
      t_replies.reserve(kKeptReplies);
    } catch (...) {
      return;
    }
  }
  // Kept at its size: the reply's receive resizes it to the next reply's, which is
  // often the same (growing a vector fills the new bytes with zeros first).
  t_replies.push_back(std::move(b));
}

// Not emptied: resizing it to the next request's size, as often the last one's, then
// fills no bytes with zeros that the request overwrites anyway.
std::vector<std::byte> request_buffer() noexcept { return std::move(t_request); }

void recycle_request_buffer(std::vector<std::byte>&& b) noexcept { give_room(t_request, std::move(b), kKeptBufferBytes); }

namespace {
// Per thread: the procedures it has named to each rank of each Rpc (named_before).
struct Named {
  std::uint64_t core, hash;
  int rank;
  bool operator==(const Named&) const = default;
};
struct NamedHash {
  std::size_t operator()(const Named& n) const noexcept {
    return n.hash ^ (n.core * 0x9e3779b97f4a7c15ull) ^ static_cast<std::size_t>(n.rank);
  }
};
constexpr std::size_t kNamedKept = 4096;
thread_local Named t_named_last{0, 0, -1};
thread_local std::unordered_set<Named, NamedHash> t_named;

void note_named(RpcCore& core, int rank, std::uint64_t hash) noexcept {
  Named n{core.uid(), hash, rank};
  try {
    // (Entries of ended Rpcs stay: a program that makes Rpcs without end starts over
    // now and then, and its requests name their procedures again.)
    if (t_named.size() >= kNamedKept) t_named.clear();
    t_named.insert(n);
  } catch (...) {  // not noted: the next request names it again
    return;
  }
  t_named_last = n;
}
}  // namespace

bool named_before(RpcCore& core, int rank, std::uint64_t hash) noexcept {
  Named n{core.uid(), hash, rank};
  if (n == t_named_last) return true;
  if (t_named.empty() || !t_named.contains(n)) return false;
  t_named_last = n;
  return true;
}

void start_call(CallState& s, RpcCore& core, int rank, const std::string& name, std::vector<std::byte> body,
                std::uint64_t id, std::uint64_t hash, bool by_hash) {
  s.link = core.link();
  s.rank = rank;
  s.name = name;
  core.count_sent();
  try {
    // Sent at once (the common case), the bytes stay here for the next request.
    s.request = CommAccess::isend_reusing(core.requests(), body, rank, Tag{by_hash ? kCallByHashTag : kCallTag});
  } catch (...) {
    core.uncount_sent();
    throw;
  }
  // (The request has left, or waits in order behind this thread's earlier ones.)
  if (!by_hash) note_named(core, rank, hash);
  recycle_request_buffer(std::move(body));
  // The reply's receive is posted once the request has left, while it travels and
  // runs (its few hundred instructions were on the way of every call); a reply that
  // comes first waits as an unexpected message, which the post finds at once. The
  // receive holds its buffer: a future dropped early leaves nothing dangling.
  s.reply = CommAccess::irecv_bytes(core.replies(), rank, Tag{reply_tag(id)}, s.reply_bytes);
}

void start_post(RpcCore& core, int rank, std::vector<std::byte> body, std::uint64_t hash, bool by_hash) {
  // Completes in the background; the request owns the bytes.
  core.count_sent();
  try {
    CommAccess::isend_reusing(core.requests(), body, rank, Tag{by_hash ? kPostByHashTag : kPostTag});
  } catch (...) {
    core.uncount_sent();
    throw;
  }
  if (!by_hash) note_named(core, rank, hash);
  recycle_request_buffer(std::move(body));
}

bool call_ready(CallState& s) {
  try {
    if (s.reply.test().has_value()) return true;
    RpcCore* core = s.link->core.load();
    if (core && core->serving_here()) core->serve_arrived();
    return s.reply.done();
  } catch (const std::exception&) {
    return true;  // get() rethrows it
  }
}

bool call_wait_until(CallState& s, std::chrono::steady_clock::time_point deadline) {
  RpcCore* core = s.link->core.load();
  if (core && core->serving_here()) return core->wait_serving(s.reply, deadline);
  return CommAccess::wait_until(s.link->world, [&] { return s.reply.done(); }, deadline);
}

void undecodable_reply(const CallState& s, const char* why) {
  throw ProtocolError("call to " + CommAccess::where(s.link->world, s.rank) + ": the reply of procedure '" + s.name +
                      "' does not decode as the result type: " + why);
}

// A reply is a bool (Cereal's one byte: whether the call ran), then the result, or
// whether it was refused, the exception's type and its message.
std::span<const std::byte> await_reply(CallState& s) {
  RpcCore* core = s.link->core.load();
  if (core && core->serving_here()) core->wait_serving(s.reply, std::chrono::steady_clock::time_point::max());
  s.reply.wait();
  try {
    s.request.wait();
  } catch (const std::exception&) {  // the reply came: the request arrived
  }
  std::span<const std::byte> bytes(*s.reply_bytes);
  if (bytes.empty()) undecodable_reply(s, "the reply is empty");
  if (bytes[0] == std::byte{1}) return bytes.subspan(1);
  bool refused = false;
  std::string type, what;
  try {
    SpanSource src(bytes.data() + 1, bytes.size() - 1);
    InStream is(&src);
    cereal::BinaryInputArchive ar(*is);
    ar(refused, type, what);
  } catch (const cereal::Exception& ex) {
    undecodable_reply(s, ex.what());
  }
  std::string where = "call to " + CommAccess::where(s.link->world, s.rank);
  if (refused) throw CallRefused(s.rank, s.name, what, where);
  throw RemoteError(s.rank, s.name, type, what, where);
}

void finish_call(CallState& s, const std::function<void(cereal::BinaryInputArchive&)>& read) {
  std::span<const std::byte> bytes = await_reply(s);
  SpanSource src(bytes.data(), bytes.size());
  InStream is(&src);
  cereal::BinaryInputArchive ar(*is);
  try {
    read(ar);
  } catch (const cereal::Exception& ex) {
    undecodable_reply(s, ex.what());
  }
}

}  // namespace ipc::detail

namespace ipc {

Rpc::Rpc(const Communicator& comm) : core_(std::make_unique<detail::RpcCore>(comm)) {}
Rpc::~Rpc() = default;
int Rpc::rank() const { return core_->rank(); }
int Rpc::size() const { return core_->size(); }

void Rpc::define_erased(const std::string& name, std::string signature, detail::Handler h,
                        detail::DirectHandler direct) {
  if (name.empty()) throw UsageError("Rpc::define: a procedure needs a name");
  core_->define(name, std::move(signature), std::move(h), std::move(direct));
}

}  // namespace ipc
