// The link between ipcrun and one node agent: a byte stream both ways (the agent's
// stdin and stdout, through the launch agent for a remote host, through pipes for this
// one) carrying framed messages, op + parts, in the bootstrap protocol's framing
// (wire/kv_protocol.hpp). The link is trusted: only ipcrun and its agent hold its ends,
// and the job secret travels on it (never on a command line).
//
// Liveness: each side sends a heartbeat when it has sent nothing for a quarter of the
// timeout (a second at most), and calls the link lost when it has heard nothing for
// `timeout` (a host cut off, a
// stopped or wedged peer). End of file or a read/write error loses the link at once.
//
// Messages, agent -> ipcrun
//   hello(host name, pid, this host's address as ipcrun's host reaches it or "",
//         ipcrun's host's address as seen from here or "")
//   started(rank, pid)        spawn_failed(rank, what)       exited(rank, wait status)
//   output(stream "1"|"2", whole lines)                      done()   every rank ended
//   stdin_ack(bytes)          stdin_data bytes written to rank 0 (or dropped)
//   put(key, value)  get(key)  fence(rank)  report(rank, line)   the ranks' bootstrap
// Messages, ipcrun -> agent
//   job(fields of AgentJob)   signal(number)   stdin_data(bytes)   stdin_eof()
//   value(key, value)  fenced(k1, v1, ...)   quit()   stop the ranks now and exit
// Both ways: heartbeat().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "wire/kv_protocol.hpp"

namespace ipc::launcher {

enum class LinkOp : std::uint8_t {
  hello = 1,
  started,
  spawn_failed,
  exited,
  output,
  done,
  put,
  get,
  fence,
  report,
  stdin_ack,
  dump_state,  // rank, its process state (/proc: R, S, D, T, ...; "ended")
  dump_line,   // rank, one line of its report
  job = 32,
  signal,
  stdin_data,
  stdin_eof,
  value,
  fenced,
  quit,
  dump,  // ask every rank for a report of what it waits for
  heartbeat = 64,
};

/// Encodes one message (for sending the same bytes on many links).
std::shared_ptr<const std::vector<std::byte>> encode_link_message(LinkOp op, const std::vector<std::string>& parts);

/// Decodes the message at the front of `in`, as a link reads them: the framing of
/// encode_link_message, within the link's limits (256 MiB a message, 2^24 parts),
/// with any operation byte (heartbeats and unknown ones too). ok: `op`, `parts` and
/// `used`, its length, are set; need_more: it is not all there yet; malformed: the
/// stream is unusable, `why` says how.
wire::KvDecode decode_link_message(std::span<const std::byte> in, LinkOp& op, std::vector<std::string>& parts,
                                   std::size_t& used, std::string* why = nullptr);

class Link : public std::enable_shared_from_this<Link> {
 public:
  struct Handlers {
    /// Every message but heartbeats. May call send(), close(), and drop the owner's
    /// reference to the link.
    std::function<void(LinkOp, std::vector<std::string>&)> message;
    /// Once, when the link fails: end of file, an error, a malformed message, or
    /// silence longer than the timeout. `why` is a phrase ("closed", "no word for 10 s").
    std::function<void(const std::string& why)> lost;
  };

  /// Takes ownership of both descriptors (they may be the same one).
  Link(asio::io_context& io, int in_fd, int out_fd, Handlers handlers, std::chrono::milliseconds timeout);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void start();
  void send(LinkOp op, const std::vector<std::string>& parts = {});
  void send(const std::shared_ptr<const std::vector<std::byte>>& encoded);
  /// send(op, {head, body}) without copying `body` on the way.
  void send2(LinkOp op, std::string_view head, std::string_view body);
  /// Writes out everything queued, blocking for at most `limit` (before ipcrun stops
  /// itself, so that what it sent gets there meanwhile). False when some is left.
  bool flush(std::chrono::milliseconds limit);
  /// While paused, silence does not lose the link (the other side is stopped on
  /// purpose); resuming restarts the clock.
  void pause_watchdog(bool paused);
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  /// While paused, nothing is read (the peer's messages wait in the pipe or socket,
  /// and the peer's own queue then holds its senders back), and silence does not
  /// lose the link.
  void pause_reading(bool paused);
  /// Bytes queued, not yet written.
  std::size_t backlog() const { return tx_.size() - tx_done_; }
  /// Runs `f` once the backlog is under kLowWater (at once if it is), or the link
  /// has closed.
  void when_drained(std::function<void()> f);
  /// Runs `f` once everything queued is written, or the link has closed.
  void when_flushed(std::function<void()> f);
  static constexpr std::size_t kHighWater = 4u << 20;  // senders should wait above this
  static constexpr std::size_t kLowWater = 1u << 20;
  /// Closes both descriptors; no handler runs after this.
  void close();
  bool is_open() const { return open_; }

 private:
  void read();
  void on_readable();
  void try_write();
  void tick();
  void fail(const std::string& why);

  asio::posix::stream_descriptor in_;
  asio::posix::stream_descriptor out_;
  Handlers handlers_;
  std::chrono::milliseconds timeout_;
  asio::steady_timer ticker_;
  std::vector<std::byte> rx_;
  std::vector<std::byte> tx_;
  std::size_t tx_done_ = 0;  // bytes of tx_ already written
  bool writing_ = false;     // waiting for the descriptor to take more
  bool write_broken_ = false;  // the peer reads no more (EPIPE): sending is a no-op
  bool open_ = true;
  bool paused_ = false;
  bool reading_paused_ = false;
  bool read_armed_ = false;
  bool sent_since_tick_ = false;
  std::chrono::steady_clock::time_point last_heard_;
  std::vector<std::function<void()>> drained_, flushed_;
};

}  // namespace ipc::launcher
