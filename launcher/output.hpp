// ipcrun's standard streams: the relay of the ranks' output, line by line, and of
// a terminal to rank 0's standard input.
//
// Lines of different ranks never mix: a stream's bytes are cut at its last newline
// and every batch of whole lines reaches ipcrun's own stdout or stderr in a single
// write(2). All of it runs on the job's io_context thread.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

namespace ipc::launcher {

/// Where relayed lines go: ipcrun's own stdout or stderr, or, in a node agent, the
/// link to ipcrun.
class LineSink {
 public:
  virtual ~LineSink() = default;
  virtual void write(std::string_view bytes) = 0;
  /// Whether it takes more now. If not, `resume` runs once it does (a link whose
  /// queue is long: the rank's pipe then waits, and the rank with it).
  virtual bool ready(const std::function<void()>& resume) {
    (void)resume;
    return true;
  }
};

/// One of ipcrun's own output descriptors (1 or 2). Blocking writes of whole
/// batches: a reader that stops reading holds the job up, as it would hold up a
/// program writing to it directly. Once start_output_thread() has run, the writes
/// happen on a thread of their own, in order, so that ipcrun's loop (its heartbeats
/// to the agents above all) runs on while a reader dawdles; the job stops reading
/// its agents while output_backlog() is long. After a write error (EPIPE: the reader
/// went away) it discards everything, so the ranks' pipes keep draining and ipcrun
/// keeps running.
class OutputSink : public LineSink {
 public:
  explicit OutputSink(int fd) : fd_(fd) {}
  /// Writes all of `bytes` (one write(2) unless the kernel takes less), now or,
  /// with the output thread, once what was queued before is out.
  void write(std::string_view bytes) override;
  /// The blocking write itself.
  void write_now(std::string_view bytes);
  /// Runs `hook` once, on whichever thread writes, when a write fails (the reader of
  /// a pipe went away).
  void on_broken(std::function<void()> hook);

 private:
  int fd_;
  bool broken_ = false;
  std::function<void()> broken_hook_;
};

OutputSink& stdout_sink();
OutputSink& stderr_sink();

/// From now on OutputSink writes go through a thread (ipcrun, during a job).
void start_output_thread();
/// Waits until everything queued is written (or discarded after an error).
void flush_output();
/// Bytes queued and not yet written.
std::size_t output_backlog();
/// Backlog above which the job stops taking more output, and below which it resumes.
inline constexpr std::size_t kOutputHighWater = 8u << 20;
inline constexpr std::size_t kOutputLowWater = 2u << 20;
/// Runs `f` (on the output thread, or here when it holds already) once the backlog
/// is below kOutputLowWater.
void when_output_drained(std::function<void()> f);

/// Prints one line of ipcrun's own, "ipcrun: <text>", to stderr.
void say(std::string_view text);

/// Relays one pipe of one rank (its stdout or stderr) to a sink, whole lines at a
/// time, each prefixed with `prefix` ("[r] " under --tag-output, else empty).
/// A partial last line is written when the pipe closes, ended with a newline. A line
/// longer than kMaxLine is passed on in lines of kMaxLine bytes (each ended with a
/// newline) rather than held without bound.
class RankOutput : public std::enable_shared_from_this<RankOutput> {
 public:
  static constexpr std::size_t kMaxLine = 16u << 20;

  /// Takes ownership of `fd`. `on_closed` runs once, when the pipe reaches end of
  /// file or fails, not after close().
  RankOutput(asio::io_context& io, int fd, LineSink& sink, std::string prefix,
             std::function<void()> on_closed);
  void start();
  /// Lines that start with `mark` are not relayed: `f` gets each (without the mark).
  /// The agent takes a rank's report of what it waits for (launcher/dump.hpp) out of
  /// its standard error this way.
  void divert(std::string mark, std::function<void(std::string_view)> f) {
    mark_ = std::move(mark);
    diverted_ = std::move(f);
  }
  /// Relays, without waiting, whatever the pipe holds now (used when the rank has
  /// exited, so that its last words come before ipcrun's line about it).
  void drain_available();
  /// Stops reading (a grandchild of the rank still holds the pipe open) and writes
  /// out a partial line.
  void close();
  bool is_open() const { return !closed_; }

 private:
  void read();
  /// Reads and relays up to `rounds` buffers; false at end of file or on error.
  bool read_now(int rounds);
  void consume(const char* data, std::size_t n);
  void flush_partial();

  asio::posix::stream_descriptor pipe_;
  LineSink& sink_;
  std::string prefix_;
  std::function<void()> on_closed_;
  std::string mark_;           // divert()
  std::function<void(std::string_view)> diverted_;
  std::string pending_;        // bytes after the last newline relayed
  std::string batch_;          // reused output buffer
  bool closed_ = false;
  std::array<char, 64 * 1024> buf_{};
};

/// Copies ipcrun's terminal to rank 0's stdin through a pipe. Used only when
/// ipcrun's stdin is a terminal and ipcrun is in its foreground: a rank runs in a
/// process group of its own and would be stopped (SIGTTIN) reading the terminal.
/// The terminal is opened anew so the non-blocking mode stays off the shell's
/// descriptor.
class StdinRelay : public std::enable_shared_from_this<StdinRelay> {
 public:
  /// Whether ipcrun's stdin is a terminal whose foreground is ipcrun's group.
  static bool wanted();
  /// Opens the terminal and a pipe; `rank_fd` receives the pipe's read end (close-
  /// on-exec, the spawner dup2()s it), or -1 on failure (then nothing to start).
  explicit StdinRelay(asio::io_context& io, int& rank_fd);
  void start();
  void close();

 private:
  void read();
  asio::posix::stream_descriptor tty_;
  asio::posix::stream_descriptor pipe_;
  std::array<char, 4096> buf_{};
};

}  // namespace ipc::launcher
