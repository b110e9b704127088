#include "link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "wire/bytes.hpp"
#include "wire/kv_protocol.hpp"

namespace ipc::launcher {
namespace {

// A heartbeat goes out after this much silence: a quarter of the timeout, at most a
// second, so that several are sent within any timeout.
std::chrono::milliseconds heartbeat_interval(std::chrono::milliseconds timeout) {
  return std::clamp(timeout / 4, std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
}
constexpr std::size_t kReadChunk = 64 * 1024;

// Messages carry whole output batches and the job's key-value pairs.
const wire::KvLimits kLinkLimits{256u << 20, 1u << 24};

void set_non_blocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string seconds_text(std::chrono::milliseconds ms) {
  std::ostringstream os;
  os << std::chrono::duration<double>(ms).count();
  return os.str();
}

}  // namespace

std::shared_ptr<const std::vector<std::byte>> encode_link_message(LinkOp op, const std::vector<std::string>& parts) {
  auto out = std::make_shared<std::vector<std::byte>>();
  wire::encode_frame(static_cast<std::uint8_t>(op), parts, *out);
  return out;
}

wire::KvDecode decode_link_message(std::span<const std::byte> in, LinkOp& op, std::vector<std::string>& parts,
                                   std::size_t& used, std::string* why) {
  std::uint8_t code = 0;
  auto r = wire::decode_frame(in, kLinkLimits, code, parts, used, why);
  if (r == wire::KvDecode::ok) op = static_cast<LinkOp>(code);
  return r;
}

Link::Link(asio::io_context& io, int in_fd, int out_fd, Handlers handlers, std::chrono::milliseconds timeout)
    : in_(io), out_(io), handlers_(std::move(handlers)), timeout_(timeout), ticker_(io) {
  if (out_fd == in_fd) out_fd = ::fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
  set_non_blocking(in_fd);
  set_non_blocking(out_fd);
  in_.assign(in_fd);
  out_.assign(out_fd);
}

Link::~Link() { close(); }

void Link::start() {
  last_heard_ = std::chrono::steady_clock::now();
  read();
  tick();
}

void Link::read() {
  if (reading_paused_ || read_armed_) return;
  read_armed_ = true;
  auto self = shared_from_this();
  in_.async_wait(asio::posix::stream_descriptor::wait_read, [self](asio::error_code ec) {
    self->read_armed_ = false;
    if (ec || !self->open_) return;
    self->on_readable();
  });
}

void Link::pause_reading(bool paused) {
  reading_paused_ = paused;
  last_heard_ = std::chrono::steady_clock::now();
  if (!paused && open_) read();
}

void Link::on_readable() {
  auto self = shared_from_this();  // a handler may drop the owner's reference
  bool eof = false;
  for (int rounds = 0; rounds < 16; ++rounds) {
    std::size_t n0 = rx_.size();
    rx_.resize(n0 + kReadChunk);
    ssize_t n = ::read(in_.native_handle(), rx_.data() + n0, kReadChunk);
    rx_.resize(n0 + (n > 0 ? static_cast<std::size_t>(n) : 0));
    if (n > 0) continue;
    if (n == 0) eof = true;
    else if (errno == EINTR) continue;
    else if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(std::string("read: ") + std::strerror(errno));
    break;
  }
  last_heard_ = std::chrono::steady_clock::now();
  std::size_t begin = 0;
  while (open_) {
    LinkOp op{};
    std::vector<std::string> parts;
    std::size_t used = 0;
    std::string why;
    auto r = decode_link_message(std::span<const std::byte>(rx_).subspan(begin), op, parts, used, &why);
    if (r == wire::KvDecode::need_more) break;
    if (r == wire::KvDecode::malformed) return fail("malformed message: " + why);
    begin += used;
    if (op == LinkOp::heartbeat) continue;
    handlers_.message(op, parts);
  }
  if (!open_) return;
  rx_.erase(rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(begin));
  if (eof) return fail("closed");
  read();
}

void Link::send(LinkOp op, const std::vector<std::string>& parts) {
  if (!open_ || write_broken_) return;
  wire::encode_frame(static_cast<std::uint8_t>(op), parts, tx_);
  sent_since_tick_ = true;
  try_write();
}

void Link::send2(LinkOp op, std::string_view head, std::string_view body) {
  if (!open_ || write_broken_) return;
  // The frame of wire::encode_frame: u32 body length | u8 op | u32 count | (u32 len | bytes)*.
  auto put32 = [this](std::uint32_t v) { wire::put_int(tx_, v); };
  std::size_t len = 1 + 4 + 4 + head.size() + 4 + body.size();
  if (tx_.capacity() < tx_.size() + 4 + len) tx_.reserve(std::max(tx_.size() + 4 + len, 2 * tx_.capacity()));
  put32(static_cast<std::uint32_t>(len));
  tx_.push_back(static_cast<std::byte>(op));
  put32(2);
  put32(static_cast<std::uint32_t>(head.size()));
  auto* h = reinterpret_cast<const std::byte*>(head.data());
  tx_.insert(tx_.end(), h, h + head.size());
  put32(static_cast<std::uint32_t>(body.size()));
  auto* b = reinterpret_cast<const std::byte*>(body.data());
  tx_.insert(tx_.end(), b, b + body.size());
  sent_since_tick_ = true;
  try_write();
}

void Link::send(const std::shared_ptr<const std::vector<std::byte>>& encoded) {
  if (!open_ || write_broken_) return;
  tx_.insert(tx_.end(), encoded->begin(), encoded->end());
  sent_since_tick_ = true;
  try_write();
}

void Link::try_write() {
  while (open_ && tx_done_ < tx_.size()) {
    ssize_t n = ::write(out_.native_handle(), tx_.data() + tx_done_, tx_.size() - tx_done_);
    if (n > 0) {
      tx_done_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!writing_) {
        writing_ = true;
        auto self = shared_from_this();
        out_.async_wait(asio::posix::stream_descriptor::wait_write, [self](asio::error_code ec) {
          self->writing_ = false;
          if (!ec && self->open_) self->try_write();
        });
      }
      break;  // on to compaction: a link that stays backed up must not grow its buffer
    }
    // The peer stopped reading (it is exiting): what it sent before, `done` above
    // all, is still to be read, and end of file follows; until then nothing more goes
    // out.
    if (errno == EPIPE) {
      write_broken_ = true;
      tx_.clear();
      tx_done_ = 0;
      break;
    }
    return fail(std::string("write: ") + std::strerror(errno));
  }
  if (!open_) return;
  if (tx_done_ == tx_.size()) {
    tx_.clear();
    tx_done_ = 0;
  } else if (tx_done_ > (1u << 20) && tx_done_ > tx_.size() / 2) {
    tx_.erase(tx_.begin(), tx_.begin() + static_cast<std::ptrdiff_t>(tx_done_));
    tx_done_ = 0;
  }
  if (!drained_.empty() && backlog() < kLowWater) {
    auto waiting = std::move(drained_);
    drained_.clear();
    for (auto& f : waiting) f();
  }
  if (!flushed_.empty() && backlog() == 0) {
    auto waiting = std::move(flushed_);
    flushed_.clear();
    for (auto& f : waiting) f();
  }
}

void Link::when_flushed(std::function<void()> f) {
  if (!open_ || backlog() == 0) return f();
  flushed_.push_back(std::move(f));
}

void Link::when_drained(std::function<void()> f) {
  if (!open_ || backlog() < kLowWater) return f();
  drained_.push_back(std::move(f));
}

bool Link::flush(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (open_ && tx_done_ < tx_.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{out_.native_handle(), POLLOUT, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return false;
    ssize_t n = ::write(out_.native_handle(), tx_.data() + tx_done_, tx_.size() - tx_done_);
    if (n > 0) tx_done_ += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return false;
  }
  if (tx_done_ == tx_.size()) {
    tx_.clear();
    tx_done_ = 0;
  }
  return tx_.empty();
}

void Link::pause_watchdog(bool paused) {
  paused_ = paused;
  last_heard_ = std::chrono::steady_clock::now();
}

void Link::tick() {
  ticker_.expires_after(heartbeat_interval(timeout_));
  auto self = shared_from_this();
  ticker_.async_wait([self](asio::error_code ec) {
    if (ec || !self->open_) return;
    if (!self->sent_since_tick_) self->send(LinkOp::heartbeat);
    self->sent_since_tick_ = false;
    if (!self->open_) return;
    if (!self->paused_ && !self->reading_paused_ &&
        std::chrono::steady_clock::now() - self->last_heard_ > self->timeout_)
      return self->fail("no word for " + seconds_text(self->timeout_) + " s");
    self->tick();
  });
}

void Link::fail(const std::string& why) {
  if (!open_) return;
  auto self = shared_from_this();
  auto lost = handlers_.lost;
  close();
  if (lost) lost(why);
}

void Link::close() {
  if (!open_) return;
  open_ = false;
  asio::error_code ignored;
  ticker_.cancel();
  in_.close(ignored);
  out_.close(ignored);
  auto waiting = std::move(drained_);  // nothing more to wait for
  drained_.clear();
  for (auto& f : flushed_) waiting.push_back(std::move(f));
  flushed_.clear();
  for (auto& f : waiting) f();
}

}  // namespace ipc::launcher
