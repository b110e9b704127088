#include "ipc/communicator.hpp"

#include "core/engine.hpp"
#include "base/errors.hpp"

namespace ipc {

namespace detail {

std::shared_ptr<RequestState> post_send(Engine& e, std::uint32_t comm, int dest, int tag, SendSource src) {
  return e.isend(comm, dest, tag, std::move(src));
}

std::shared_ptr<RequestState> post_recv(Engine& e, std::uint32_t comm, int source, int tag, RecvTarget dst) {
  return e.irecv(comm, source, tag, std::move(dst));
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
  return Communicator(*c.engine_, c.shared_, c.engine_->take_contexts(purpose), c.rank_, c.size_);
}

Request CommAccess::irecv_bytes(const Communicator& c, int source, Tag tag,
                                std::shared_ptr<std::vector<std::byte>> into) {
  RecvTarget target{[into = std::move(into)](std::size_t n) -> void* {
                      into->resize(n);
                      return into->data();
                    },
                    {}};
  return Request(c.engine_->irecv(c.context_, source, tag.value, std::move(target)));
}

void CommAccess::cancel(Request& r) {
  if (r.s_) r.s_->engine->cancel_recv(*r.s_);
}

std::string CommAccess::where(const Communicator& c, int rank) { return c.engine_->where(rank); }

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
