#include "output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/write.hpp>

namespace ipc::launcher {

namespace {

struct Writer {
  std::mutex mu;
  std::condition_variable work, idle;
  std::deque<std::pair<OutputSink*, std::string>> queue;
  std::size_t bytes = 0;  // queued or being written
  bool running = false;
  bool busy = false;
  std::vector<std::function<void()>> drained;

  void loop() {
    std::unique_lock lk(mu);
    for (;;) {
      work.wait(lk, [&] { return !queue.empty(); });
      auto item = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lk.unlock();
      item.first->write_now(item.second);
      lk.lock();
      bytes -= item.second.size();
      if (bytes < kOutputLowWater && !drained.empty()) {
        auto ready = std::move(drained);
        drained.clear();
        lk.unlock();
        for (auto& f : ready) f();  // still busy: flush_output() waits for them too
        lk.lock();
      }
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
  }
};

Writer& writer() {
  static Writer* w = new Writer;  // never destroyed: its thread may outlive main()
  return *w;
}

}  // namespace

void start_output_thread() {
  auto& w = writer();
  std::lock_guard lk(w.mu);
  if (w.running) return;
  w.running = true;
  std::thread([&w] { w.loop(); }).detach();
}

void flush_output() {
  auto& w = writer();
  std::unique_lock lk(w.mu);
  w.idle.wait(lk, [&] { return w.queue.empty() && !w.busy; });
}

std::size_t output_backlog() {
  auto& w = writer();
  std::lock_guard lk(w.mu);
  return w.bytes;
}

void when_output_drained(std::function<void()> f) {
  auto& w = writer();
  {
    std::lock_guard lk(w.mu);
    if (w.bytes >= kOutputLowWater) {
      w.drained.push_back(std::move(f));
      return;
    }
  }
  f();
}

void OutputSink::write(std::string_view bytes) {
  auto& w = writer();
  {
    std::lock_guard lk(w.mu);
    if (w.running) {
      if (bytes.empty()) return;
      w.queue.emplace_back(this, std::string(bytes));
      w.bytes += bytes.size();
      w.work.notify_one();
      return;
    }
  }
  write_now(bytes);
}

void OutputSink::write_now(std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0 && !broken_) {
    ssize_t n = ::write(fd_, p, left);
    if (n >= 0) {
      p += n;
      left -= static_cast<std::size_t>(n);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // Someone made our descriptor non-blocking: wait until it takes more.
      pollfd pfd{fd_, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
    } else {
      broken_ = true;  // EPIPE, EIO, ENOSPC...: discard from now on
      std::function<void()> hook;
      {
        std::lock_guard lk(writer().mu);
        hook = std::move(broken_hook_);
        broken_hook_ = nullptr;
      }
      if (hook) hook();
    }
  }
}

void OutputSink::on_broken(std::function<void()> hook) {
  std::lock_guard lk(writer().mu);
  broken_hook_ = std::move(hook);
}

OutputSink& stdout_sink() {
  static OutputSink sink(STDOUT_FILENO);
  return sink;
}

OutputSink& stderr_sink() {
  static OutputSink sink(STDERR_FILENO);
  return sink;
}

void say(std::string_view text) {
  std::string line;
  line.reserve(text.size() + 9);
  line.append("ipcrun: ").append(text).push_back('\n');
  stderr_sink().write(line);
}

// ---- RankOutput ----

RankOutput::RankOutput(asio::io_context& io, int fd, LineSink& sink, std::string prefix,
                       std::function<void()> on_closed)
    : pipe_(io, fd), sink_(sink), prefix_(std::move(prefix)), on_closed_(std::move(on_closed)) {}

void RankOutput::start() {
  asio::error_code ignored;
  pipe_.non_blocking(true, ignored);
  read();
}

// Asio only reports readiness; the bytes are read here, so that drain_available()
// can read at any time without overtaking data held in a pending operation.
void RankOutput::read() {
  pipe_.async_wait(asio::posix::descriptor_base::wait_read, [self = shared_from_this()](asio::error_code ec) {
    if (self->closed_) return;
    if (!ec && self->read_now(4)) {
      if (self->sink_.ready([self] {
            if (!self->closed_) self->read();
          }))
        self->read();
      return;
    }
    // End of file, or an error that ends this pipe all the same.
    self->flush_partial();
    self->closed_ = true;
    asio::error_code ignored;
    self->pipe_.close(ignored);
    if (self->on_closed_) self->on_closed_();
  });
}

bool RankOutput::read_now(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    ssize_t n = ::read(pipe_.native_handle(), buf_.data(), buf_.size());
    if (n > 0) {
      consume(buf_.data(), static_cast<std::size_t>(n));
    } else if (n == 0) {
      return false;
    } else if (errno == EINTR) {
      continue;
    } else {
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
  return true;
}

void RankOutput::drain_available() {
  // End of file is left for the pending wait to see. Bounded, in case a
  // descendant of the rank keeps writing.
  if (!closed_) read_now(64);
}

void RankOutput::close() {
  if (closed_) return;
  flush_partial();
  closed_ = true;
  asio::error_code ignored;
  pipe_.close(ignored);
}

void RankOutput::consume(const char* data, std::size_t n) {
  pending_.append(data, n);
  auto last = pending_.rfind('\n');
  if (last != std::string::npos && !mark_.empty() && std::memchr(pending_.data(), mark_[0], last + 1)) {
    // Some line may be marked: line by line, the others still in one batch.
    batch_.clear();
    for (std::size_t begin = 0; begin <= last;) {
      auto end = pending_.find('\n', begin);
      std::string_view line(pending_.data() + begin, end - begin);
      if (line.starts_with(mark_))
        diverted_(line.substr(mark_.size()));
      else
        batch_.append(prefix_).append(line).push_back('\n');
      begin = end + 1;
    }
    if (!batch_.empty()) sink_.write(batch_);
    pending_.erase(0, last + 1);
  } else if (last != std::string::npos) {
    if (prefix_.empty()) {
      sink_.write(std::string_view(pending_).substr(0, last + 1));
    } else {
      batch_.clear();
      std::size_t begin = 0;
      while (begin <= last) {
        auto end = pending_.find('\n', begin);
        batch_.append(prefix_);
        batch_.append(pending_, begin, end + 1 - begin);
        begin = end + 1;
      }
      sink_.write(batch_);
    }
    pending_.erase(0, last + 1);
  }
  while (pending_.size() >= kMaxLine) {
    // A line without end for too long: its first kMaxLine bytes go on as a line of
    // their own (they get a newline), so that nothing of another rank's can land
    // inside it.
    batch_.clear();
    batch_.append(prefix_).append(pending_, 0, kMaxLine).push_back('\n');
    sink_.write(batch_);
    pending_.erase(0, kMaxLine);
  }
}

void RankOutput::flush_partial() {
  if (pending_.empty()) return;
  // A rank's last line without a newline gets one: the next line written, another
  // rank's, must not be glued to it.
  batch_.clear();
  batch_.append(prefix_).append(pending_).push_back('\n');
  sink_.write(batch_);
  pending_.clear();
}

// ---- StdinRelay ----

bool StdinRelay::wanted() {
  return ::isatty(STDIN_FILENO) && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
}

StdinRelay::StdinRelay(asio::io_context& io, int& rank_fd) : tty_(io), pipe_(io) {
  rank_fd = -1;
  char name[PATH_MAX];
  if (::ttyname_r(STDIN_FILENO, name, sizeof name) != 0) return;
  int tty = ::open(name, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ::close(tty);
    return;
  }
  tty_.assign(tty);
  pipe_.assign(fds[1]);
  rank_fd = fds[0];
}

void StdinRelay::start() {
  if (tty_.is_open()) read();
}

void StdinRelay::read() {
  tty_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](asio::error_code ec, std::size_t n) {
    if (ec) {
      // End of input (^D) or the relay was closed: rank 0 sees end of file.
      self->close();
      return;
    }
    asio::async_write(self->pipe_, asio::buffer(self->buf_.data(), n),
                      [self](asio::error_code ec, std::size_t) {
                        if (ec) {
                          self->close();  // rank 0 is gone or stopped reading
                          return;
                        }
                        self->read();
                      });
  });
}

void StdinRelay::close() {
  asio::error_code ignored;
  tty_.close(ignored);
  pipe_.close(ignored);
}

}  // namespace ipc::launcher
