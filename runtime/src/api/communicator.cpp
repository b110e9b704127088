#include "ipc/communicator.hpp"

#include <algorithm>

#include "core/context.hpp"
#include "core/engine.hpp"
#include "collectives/shared.hpp"
#include "base/errors.hpp"

namespace ipc {

namespace detail {

RequestState* post_send(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src, Status* done_now) {
  return e.isend(comm, dest, tag, std::move(src), done_now).release();
}

bool send_raw_now(Engine& e, std::uint32_t comm, int dest, int tag, const void* data, std::size_t size) {
  return e.send_now(comm, dest, tag, data, size);
}

RequestState* post_recv(Engine& e, std::uint32_t comm, int source, int tag, RecvTarget&& dst) {
  return e.irecv(comm, source, tag, std::move(dst)).release();
}

RequestState* post_recv_raw(Engine& e, std::uint32_t comm, int source, int tag, void* data, std::size_t bytes,
                            bool exact) {
  return e.irecv_raw(comm, source, tag, data, bytes, exact).release();
}

Status send_wait(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src) {
  return e.send(comm, dest, tag, std::move(src));
}

Status recv_wait(Engine& e, std::uint32_t comm, int source, int tag, const RecvTarget& dst) {
  return e.recv(comm, source, tag, dst);
}

Communicator CommAccess::make(Engine& engine, const CollShared* shared, std::uint32_t context, int rank, int size) {
  return Communicator(engine, shared, context, rank, size);
}

Communicator CommAccess::fresh(const Communicator& c, Purpose purpose) {
  return c.derive(purpose, nullptr);
}

Request CommAccess::irecv_bytes(const Communicator& c, int source, Tag tag,
                                std::shared_ptr<std::vector<std::byte>> into) {
  // The request holds the buffer; the target only points at it.
  RecvTarget target;
  target.bytes_into = into.get();
  return Request(c.engine_->irecv(c.context_, source, tag.value, std::move(target), std::move(into)).release());
}

Status CommAccess::recv_bytes(const Communicator& c, int source, Tag tag, std::vector<std::byte>& into) {
  RecvTarget target;
  target.bytes_into = &into;
  return c.engine_->recv(c.context_, source, tag.value, target);
}

Request CommAccess::isend_reusing(const Communicator& c, std::vector<std::byte>& bytes, int dest, Tag tag) {
  // (A communicator of some of the job's ranks goes by isend: send_now takes none.)
  if (c.engine_->send_now(c.context_, dest, tag.value, SendSource{bytes.data(), bytes.size(), nullptr}))
    return Request(Status{dest, tag, bytes.size()});
  return c.isend(std::move(bytes), dest, tag);
}

void CommAccess::poll_for_peers_on_this_thread() { Engine::poll_for_peers_on_this_thread(); }

void CommAccess::cancel(Request& r) {
  if (r.s_) r.s_->engine->cancel_recv(*r.s_);
}

const std::string& CommAccess::job(const Communicator& c) { return c.shared_->job; }
int CommAccess::job_rank(const Communicator& c, int rank) { return c.engine_->job_rank(c.context_, rank, "rank"); }
bool CommAccess::gone(const Communicator& c, int rank) { return c.engine_->check_gone(job_rank(c, rank)); }

std::string CommAccess::where(const Communicator& c, int rank) {
  return c.engine_->where(c.engine_->job_rank(c.context_, rank, "rank"));
}

bool CommAccess::wait_until(const Communicator& c, const std::function<bool()>& done,
                            std::chrono::steady_clock::time_point deadline) {
  return c.engine_->wait_until(done, deadline);
}

}  // namespace detail

Communicator::Communicator(detail::Engine& engine, const detail::CollShared* shared, std::uint32_t context, int rank,
                           int size)
    : engine_(&engine),
      shared_(shared),
      context_(context),
      coll_context_(detail::collective_context(context)),
      rank_(rank),
      size_(size) {}

void Communicator::check_tag(Tag tag, const char* op) {
  if (tag.value < 0)
    throw UsageError(std::string(op) + ": tag " + std::to_string(tag.value) + " is negative (tags are 0 and up)");
}

void Communicator::check_recv_tag(Tag tag) {
  if (tag.value < 0 && tag != any_tag)
    throw UsageError("receive: tag " + std::to_string(tag.value) + " is negative (tags are 0 and up, or any_tag)");
}

void Communicator::barrier() const { detail::coll_barrier(coll()); }

void detail::CommAccess::symmetric_barrier(const Communicator& c) { detail::coll_barrier(c.coll(), true); }

// A fresh context of `purpose` for `job_ranks` (the same ranks as this one when null),
// agreed on by every rank of this communicator: the largest of their next numbers.
Communicator Communicator::derive(detail::Purpose purpose, const std::vector<int>* job_ranks, int rank) const {
  std::uint32_t number = allreduce(engine_->next_context(purpose), op::max{});
  if (number > detail::kNumberMask) throw UsageError("communicators: all context numbers are used");
  std::uint32_t ctx = engine_->take_context_at(purpose, number);
  auto made = [&] {
    if (job_ranks) {
      ctx |= detail::kGroupBit;
      engine_->add_group(ctx, *job_ranks);
      return Communicator(*engine_, shared_, ctx, rank, static_cast<int>(job_ranks->size()));
    }
    if (detail::grouped(context_)) {
      ctx |= detail::kGroupBit;
      engine_->add_group(ctx, engine_->group_of(context_)->job);
    }
    return Communicator(*engine_, shared_, ctx, rank_, size_);
  }();
  // A program's communicator whose ranks share a node runs its collectives through a
  // shared segment of its own, as the world's do (the library's private ones need none).
  if (purpose == detail::Purpose::user && made.rank_ >= 0) detail::coll_make_node_group(made.coll());
  return made;
}

Request Communicator::start_collective(std::function<void(const Communicator&)> body) const {
  // Two references: the handle's and the task's.
  auto* state = detail::RequestState::make(detail::RequestState::Kind::send);
  Request handle(state);
  state->engine = engine_;
  state->background = true;  // the task below owns it too
  Communicator lane = *this;
  lane.coll_context_ = detail::nonblocking_context(context_);
  detail::RequestState::retain(state);
  detail::RequestRef task_ref(state);  // (let go of if the task cannot be made)
  engine_->post_async(lane.coll_context_, [lane, body = std::move(body), ref = std::move(task_ref)] {
    detail::RequestState& st = *ref;
    try {
      body(lane);
    } catch (...) {
      st.error = std::current_exception();
    }
    st.engine->mark_done(st);
  });
  return handle;
}

Communicator Communicator::dup() const { return derive(detail::Purpose::user, nullptr); }

namespace {
struct SplitEntry {
  int color;
  int key;
};
}  // namespace

Communicator Communicator::split(int color, int key) const {
  if (color < 0)
    throw UsageError("split: color " + std::to_string(color) + " is negative (colors are 0 and up)");
  auto all = allgather(SplitEntry{color, key});
  std::vector<std::pair<std::pair<int, int>, int>> members;  // ((key, rank here), rank here)
  for (int r = 0; r < size_; ++r)
    if (all[static_cast<std::size_t>(r)].color == color) members.push_back({{all[static_cast<std::size_t>(r)].key, r}, r});
  std::sort(members.begin(), members.end());
  std::vector<int> job;
  int me = -1;
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].second == rank_) me = static_cast<int>(i);
    job.push_back(engine_->job_rank(context_, members[i].second, "split"));
  }
  return derive(detail::Purpose::user, &job, me);
}

std::optional<Communicator> Communicator::subset(std::span<const int> ranks) const {
  std::vector<bool> seen(static_cast<std::size_t>(size_), false);
  std::vector<int> job;
  int me = -1;
  for (int r : ranks) {
    if (r < 0 || r >= size_)
      throw UsageError("subset: rank " + std::to_string(r) + " is not a rank of the communicator (0 to " +
                       std::to_string(size_ - 1) + ")");
    if (seen[static_cast<std::size_t>(r)]) throw UsageError("subset: rank " + std::to_string(r) + " is listed twice");
    seen[static_cast<std::size_t>(r)] = true;
    if (r == rank_) me = static_cast<int>(job.size());
    job.push_back(engine_->job_rank(context_, r, "subset"));
  }
  if (ranks.empty()) throw UsageError("subset: no ranks listed");
  // Every rank agrees on the number (and checks that all passed the same list).
  std::uint64_t digest = 1469598103934665603ull;
  for (int r : ranks) digest = (digest ^ static_cast<std::uint64_t>(r)) * 1099511628211ull;
  auto digests = allgather(digest);
  for (int r = 0; r < size_; ++r)
    if (digests[static_cast<std::size_t>(r)] != digest)
      throw UsageError("subset: rank " + std::to_string(r) + " passed another list of ranks than rank " +
                       std::to_string(rank_));
  Communicator c = derive(detail::Purpose::user, &job, me);
  if (me < 0) return std::nullopt;
  return c;
}

Communicator Communicator::split_by_node() const {
  // The color: the smallest job rank on this node (every rank of the node finds it).
  int color = engine_->rank();
  for (int r = 0; r < engine_->size(); ++r)
    if (engine_->node_of(r) == engine_->node()) {
      color = r;
      break;
    }
  return split(color, rank_);
}

void Communicator::check_root(int root, const char* op) const {
  if (root < 0 || root >= size_)
    throw UsageError(std::string(op) + ": root " + std::to_string(root) + " is not a rank (0 to " +
                     std::to_string(size_ - 1) + ")");
}

void Communicator::check_count(std::size_t n, const char* op) const {
  if (n != static_cast<std::size_t>(size_))
    throw UsageError(std::string(op) + ": " + std::to_string(n) + " values for " + std::to_string(size_) +
                     " ranks");
}

void Communicator::check_blocks(std::size_t in, std::size_t out, const char* op) const {
  if (out != in * static_cast<std::size_t>(size_))
    throw UsageError(std::string(op) + ": " + std::to_string(out) + " output elements for blocks of " +
                     std::to_string(in) + " from " + std::to_string(size_) + " ranks");
}

detail::Layout Communicator::layout(std::span<const std::size_t> counts, std::size_t elem, std::size_t mine,
                                    std::size_t all, const char* op) const {
  if (counts.size() != static_cast<std::size_t>(size_))
    throw UsageError(std::string(op) + ": " + std::to_string(counts.size()) + " counts for " + std::to_string(size_) +
                     " ranks");
  detail::Layout l;
  l.bytes.reserve(counts.size());
  l.displs.reserve(counts.size());
  std::size_t at = 0;
  for (std::size_t c : counts) {
    l.displs.push_back(at * elem);
    l.bytes.push_back(c * elem);
    at += c;
  }
  if (mine != npos && counts[static_cast<std::size_t>(rank_)] != mine)
    throw UsageError(std::string(op) + ": rank " + std::to_string(rank_) + "'s count is " +
                     std::to_string(counts[static_cast<std::size_t>(rank_)]) + " but its block has " +
                     std::to_string(mine) + " elements");
  if (all != npos && at != all)
    throw UsageError(std::string(op) + ": the counts add up to " + std::to_string(at) + " elements, the buffer has " +
                     std::to_string(all));
  return l;
}

namespace detail {
void throw_lengths_differ(const char* op, std::size_t mine, std::size_t theirs) {
  throw ProtocolError(std::string(op) + ": ranks pass vectors of " + std::to_string(mine) + " and " +
                      std::to_string(theirs) + " elements");
}
}  // namespace detail

void Communicator::alltoall_sizes(std::size_t in, std::size_t out) const {
  throw UsageError("alltoall: " + std::to_string(in) + " input and " + std::to_string(out) +
                   " output elements; both must be the same multiple of " + std::to_string(size_) + " ranks");
}

Status Communicator::probe(int source, Tag tag) const {
  check_recv_tag(tag);
  return engine_->probe(context_, source, tag.value);
}

std::optional<Status> Communicator::iprobe(int source, Tag tag) const {
  check_recv_tag(tag);
  return engine_->iprobe(context_, source, tag.value);
}

}  // namespace ipc
