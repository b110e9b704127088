// The task farm over bytes (farm.hpp has the contract).
//
// Messages, on a private context of the farm's own (core/context.hpp; every rank
// takes the same, farms being collective):
//   tasks   rank 0 -> worker   tag 1   (u64 index, u64 length, task bytes)...
//   results worker -> rank 0   tag 2   u8 starved, u64 work ns, (u64 index, u8 ok,
//                                       u64 length, result bytes | error text)...
//   stop    rank 0 -> worker   tag 3   (empty)
// A message carries a batch of tasks, answered by one message with their results in
// the same order: one task at a time when tasks are long, more when they are shorter
// than a message's way there and back (FarmPace: farm/pace.hpp), so that a trivial task costs
// a share of a message, not a whole one.
// Rank 0 keeps one receive posted per busy worker, naming that worker: a receive that
// names a rank fails with PeerLost when the rank dies, which is how rank 0 learns
// that the worker's tasks must go to the others. A worker answers its tasks in the
// order it got them.
//
// Journal: "IPCFARM1", u64 task count, u64 hash of the tasks' bytes, then records
// (u64 index, u64 length, result bytes) appended as results come. A record cut short
// by a crash is dropped when the file is read back.
#include "ipc/farm.hpp"  // floors: the compiled half of the public farm.hpp (its template calls in here)

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>

#include "base/check.hpp"
#include "base/errors.hpp"
#include "base/hash.hpp"
#include "core/context.hpp"
#include "farm/pace.hpp"
#include "wire/bytes.hpp"

namespace ipc::detail {
namespace {

constexpr int kTask = 1, kResult = 2, kStop = 3;
// A result's byte: the task ran (else the rest is its exception's text). A results
// message's first byte: the worker waited for the batch (FarmPace: farm/pace.hpp).
constexpr unsigned kOk = 1, kStarved = 2;
// A batch grows past one task up to this many bytes of tasks (a large task goes alone).
constexpr std::size_t kBatchBytes = 32 * 1024;
constexpr char kMagic[8] = {'I', 'P', 'C', 'F', 'A', 'R', 'M', '1'};

using clock = std::chrono::steady_clock;

void put_u64(Bytes& b, std::uint64_t v) { wire::put_int(b, v); }
std::uint64_t get_u64(const std::byte* p) { return wire::get_int<std::uint64_t>(p); }

// Appends a u64 length and then what `fill` appends, straight into `b` (the length is
// written after); returns that length.
template <class F>
std::uint64_t put_sized(Bytes& b, F&& fill) {
  put_u64(b, 0);
  std::size_t start = b.size();
  fill(b);
  auto n = static_cast<std::uint64_t>(b.size() - start);
  wire::set_int(b.data() + start - 8, n);
  return n;
}

std::uint64_t hash_tasks(const FarmIo& io) {
  std::uint64_t h = base::kFnvBasis;
  Bytes t;
  for (std::size_t i = 0; i < io.count; ++i) {
    t.clear();
    io.put_task(i, t);
    std::uint64_t n = t.size();
    h = base::fnv1a(h, &n, sizeof n);
    h = base::fnv1a(h, t.data(), t.size());
  }
  return h;
}

// Results that a previous run of the same task list left in the journal (handed to
// io.take_result, marked in `have`); the file is then open for appending.
class Journal {
 public:
  Journal(const std::string& path, const FarmIo& io, std::vector<bool>& have) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("farm: cannot open journal " + path + ": " + std::strerror(errno));
    try {
      load(io, have);
    } catch (...) {  // (the destructor does not run for an object never made)
      ::close(fd_);
      throw;
    }
  }
  ~Journal() {
    if (fd_ < 0) return;
    ::fdatasync(fd_);  // the farm's results survive a crash of the machine, too
    ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

 private:
  // Checks the head (or writes it to a new file) and hands over the results recorded.
  void load(const FarmIo& io, std::vector<bool>& have) {
    const std::string& path = path_;
    Bytes head;
    head.insert(head.end(), reinterpret_cast<const std::byte*>(kMagic), reinterpret_cast<const std::byte*>(kMagic) + 8);
    put_u64(head, io.count);
    put_u64(head, hash_tasks(io));
    Bytes file = read_all();
    if (file.empty()) {
      write_all(head);
      return;
    }
    if (file.size() < head.size() || std::memcmp(file.data(), head.data(), 8) != 0)
      throw Error("farm: " + path + " is not a farm journal");
    if (std::memcmp(file.data(), head.data(), head.size()) != 0) {
      throw Error("farm: journal " + path + " was written for another task list (" +
                  std::to_string(get_u64(file.data() + 8)) + " tasks, or different ones); remove it to start over");
    }
    std::size_t at = head.size();
    while (at + 16 <= file.size()) {
      std::uint64_t index = get_u64(file.data() + at), len = get_u64(file.data() + at + 8);
      if (index >= io.count || len > file.size() - at - 16) break;
      io.take_result(index, std::span<const std::byte>(file.data() + at + 16, len));  // a later record wins
      if (!have[index]) ++resumed_;
      have[index] = true;
      at += 16 + len;
    }
    if (at < file.size() && ::ftruncate(fd_, static_cast<off_t>(at)) != 0)
      throw Error("farm: cannot cut the torn end off journal " + path + ": " + std::strerror(errno));
    ::lseek(fd_, static_cast<off_t>(at), SEEK_SET);
  }

 public:
  void record(std::uint64_t index, std::span<const std::byte> result) {
    Bytes rec;
    rec.reserve(16 + result.size());
    put_u64(rec, index);
    put_u64(rec, result.size());
    rec.insert(rec.end(), result.begin(), result.end());
    write_all(rec);
  }
  std::size_t resumed() const { return resumed_; }

 private:
  Bytes read_all() {
    Bytes out;
    std::byte buf[65536];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error("farm: cannot read journal " + path_ + ": " + std::strerror(errno));
      if (n == 0) return out;
      out.insert(out.end(), buf, buf + n);
    }
  }
  void write_all(const Bytes& b) {
    std::size_t at = 0;
    while (at < b.size()) {
      ssize_t n = ::write(fd_, b.data() + at, b.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error("farm: cannot write journal " + path_ + ": " + std::strerror(errno));
      at += static_cast<std::size_t>(n);
    }
  }
  std::string path_;
  int fd_ = -1;
  std::size_t resumed_ = 0;
};

class Progress {
 public:
  Progress(bool on, std::size_t total, std::size_t done) : on_(on), total_(total), start_done_(done) {}
  void update(std::size_t done, bool last = false) {
    if (!on_) return;
    auto now = clock::now();
    if (!last && now - printed_ < std::chrono::seconds(1)) return;
    printed_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done - start_done_) / secs : 0;
    std::fprintf(stderr, "farm: %zu/%zu tasks done, %.1f/s", done, total_, rate);
    if (!last && rate > 0) std::fprintf(stderr, ", about %.0f s left", static_cast<double>(total_ - done) / rate);
    if (last) std::fprintf(stderr, ", %.1f s", secs);
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool on_;
  std::size_t total_, start_done_;
  clock::time_point start_ = clock::now(), printed_ = clock::now();
};

// The message of the exception being handled.
std::string describe_current() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

[[noreturn]] void task_failed(std::uint64_t index, int rank, const Bytes& what) {
  throw Error("farm: task " + std::to_string(index) + " failed on rank " + std::to_string(rank) + ": " +
              std::string(reinterpret_cast<const char*>(what.data()), what.size()));
}

void work_loop(const Communicator& c, const FarmIo& io) {
  Bytes msg, reply;
  for (bool first = true;; first = false) {
    // Whether this batch was not there yet when the last one was done (rank 0 then
    // sends more at once: FarmPace). The first one is always waited for.
    bool starved = !first && !c.iprobe(0, any_tag);
    Status st = c.recv(msg, 0, any_tag);
    if (st.tag.value == kStop) {
      // Rank 0's failure, if any, is every rank's: a program that goes on the same
      // way on all ranks stops on all.
      if (!msg.empty()) throw Error(std::string(reinterpret_cast<const char*>(msg.data()), msg.size()));
      return;
    }
    reply.assign(1, static_cast<std::byte>(starved ? kStarved : 0u));
    put_u64(reply, 0);  // the batch's work time, below
    auto began = std::chrono::steady_clock::now();
    for (std::size_t at = 0; at < msg.size();) {
      if (msg.size() - at < 16 || get_u64(msg.data() + at + 8) > msg.size() - at - 16)
        throw ProtocolError("farm: a malformed task message of " + std::to_string(msg.size()) + " bytes");
      std::uint64_t index = get_u64(msg.data() + at), length = get_u64(msg.data() + at + 8);
      std::span<const std::byte> task(msg.data() + at + 16, length);
      at += 16 + length;
      put_u64(reply, index);
      std::size_t mark = reply.size();
      try {
        reply.push_back(static_cast<std::byte>(kOk));
        put_sized(reply, [&](Bytes& out) { io.work(task, out); });
      } catch (...) {
        std::string what = describe_current();
        reply.resize(mark);
        reply.push_back(std::byte{0});
        put_u64(reply, what.size());
        reply.insert(reply.end(), reinterpret_cast<const std::byte*>(what.data()),
                     reinterpret_cast<const std::byte*>(what.data()) + what.size());
      }
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - began).count();
    wire::set_int(reply.data() + 1, static_cast<std::uint64_t>(ns));
    c.send(reply, 0, Tag{kResult});
  }
}

Bytes text_bytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), reinterpret_cast<const std::byte*>(s.data()) + s.size());
}

// Rank 0 of a farm: hands tasks to the workers, keeps `in_flight` with each, collects
// results in task order, and gives the tasks of a worker that dies to the others.
class Dispatcher {
 public:
  Dispatcher(const Communicator& c, const FarmIo& io, const FarmOptions& opt)
      : c_(c),
        io_(io),
        opt_(opt),
        workers_(c.size() - 1),
        alive_(static_cast<std::size_t>(c.size()), true),
        held_(static_cast<std::size_t>(c.size())),
        pace_(static_cast<std::size_t>(c.size())),
        pending_(static_cast<std::size_t>(c.size())),
        inbox_(static_cast<std::size_t>(c.size())),
        have_(io.count, false) {}

  // Whatever happens (a bad journal, a failed task), the workers are told to stop:
  // they wait for nothing else. The stop carries rank 0's failure (fail()), which the
  // workers then throw too.
  ~Dispatcher() {
    for (int w = 1; w < c_.size(); ++w) {
      if (!alive_[static_cast<std::size_t>(w)]) continue;
      try {
        c_.send(failed_, w, Tag{kStop});
      } catch (const std::exception&) {
      }
    }
  }
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Every result goes to io.take_result as it comes (or from the journal).
  void run() {
    if (!opt_.journal.empty()) journal_.emplace(opt_.journal, io_, have_);
    for (std::uint64_t i = 0; i < io_.count; ++i)
      if (!have_[i]) queue_.push_back(i);
    done_ = io_.count - queue_.size();
    progress_.emplace(opt_.progress, io_.count, done_);
    if (workers_ == 0) {
      run_here();
    } else {
      distribute();
    }
    if (failure_) task_failed(failure_->index, failure_->rank, failure_->what);
    progress_->update(io_.count, true);
  }

 private:
  struct Failure {
    std::uint64_t index;
    int rank;
    Bytes what;
  };

  // No workers: rank 0 does the work.
  void run_here() {
    Bytes task, result;
    for (std::uint64_t i : queue_) {
      task.clear();
      result.clear();
      io_.put_task(i, task);
      try {
        io_.work(task, result);
      } catch (...) {
        task_failed(i, 0, text_bytes(describe_current()));
      }
      record(i, result);
    }
  }

  void distribute() {
    for (int w = 1; w <= workers_; ++w) feed(w);
    for (;;) {
      if (!any_busy()) {
        if (failure_ || queue_.empty()) return;
        if (!any_alive())
          throw Error("farm: every worker is gone; " + std::to_string(queue_.size()) + " of " +
                      std::to_string(io_.count) + " tasks are not done");
        for (int w = 1; w <= workers_; ++w) feed(w);
        continue;
      }
      std::size_t w;
      try {
        w = wait_any(pending_);
      } catch (const PeerLost&) {
        // wait_any names no index when the wait fails, but it reset the failed
        // receive: the live worker that holds tasks with no receive posted is gone.
        for (int q = 1; q <= workers_; ++q) {
          auto uq = static_cast<std::size_t>(q);
          if (!pending_[uq].valid() && alive_[uq] && !held_[uq].empty()) lose(q);
        }
        for (int q = 1; q <= workers_; ++q) feed(q);
        continue;
      }
      take_result(static_cast<int>(w));
    }
  }

  bool any_busy() const {
    for (int w = 1; w <= workers_; ++w)
      if (pending_[static_cast<std::size_t>(w)].valid()) return true;
    return false;
  }
  bool any_alive() const {
    for (int w = 1; w <= workers_; ++w)
      if (alive_[static_cast<std::size_t>(w)]) return true;
    return false;
  }

  // The receive owns its buffer: if rank 0 leaves by an exception, a result that lands
  // later lands in memory nobody has freed.
  void post_result_receive(int w) {
    auto uw = static_cast<std::size_t>(w);
    inbox_[uw] = std::make_shared<Bytes>();
    pending_[uw] = CommAccess::irecv_bytes(c_, w, Tag{kResult}, inbox_[uw]);
  }

  // Gives worker w tasks up to in_flight, without waiting for them to arrive (a worker
  // may be sending a large result meanwhile); its result receive is posted first and
  // stays posted while it holds any task.
  // In batches of half the limit (adaptive in-flight; one task at a time when the
  // program set in_flight), up to kBatchBytes of tasks but at least one (a task that
  // would take a batch past it waits for the next message, a large one goes alone).
  void feed(int w) {
    auto uw = static_cast<std::size_t>(w);
    auto limit = static_cast<std::size_t>(opt_.in_flight > 0 ? opt_.in_flight : pace_[uw].limit());
    std::size_t batch = opt_.in_flight > 0 ? 1 : std::max<std::size_t>(1, limit / 2);
    while (alive_[uw] && !failure_ && !queue_.empty() && held_[uw].size() < limit) {
      if (!pending_[uw].valid()) post_result_receive(w);
      Bytes msg;
      msg.reserve(std::min(kBatchBytes, batch * (16 + task_bytes_)) + 16);
      for (std::size_t n = 0; n < batch && !queue_.empty() && held_[uw].size() < limit; ++n) {
        std::uint64_t i = queue_.front();
        std::size_t mark = msg.size();
        put_u64(msg, i);
        task_bytes_ = put_sized(msg, [&](Bytes& out) { io_.put_task(i, out); });
        if (n > 0 && msg.size() - 16 > kBatchBytes) {  // over the batch's room: taken back
          msg.resize(mark);
          break;
        }
        queue_.pop_front();
        held_[uw].push_back(i);
      }
      // The request owns the bytes and completes in the background; a worker that
      // is gone shows up through its result receive.
      c_.isend(std::move(msg), w, Tag{kTask});
    }
  }

  void lose(int w) {
    auto uw = static_cast<std::size_t>(w);
    alive_[uw] = false;
    pending_[uw] = Request();
    for (auto it = held_[uw].rbegin(); it != held_[uw].rend(); ++it) queue_.push_front(*it);
    held_[uw].clear();
  }

  void take_result(int w) {
    auto uw = static_cast<std::size_t>(w);
    Bytes& msg = *inbox_[uw];
    IPC_ENFORCE(msg.size() >= 9 + 17, "farm: rank " + std::to_string(w) + " sent a results message of " +
                                          std::to_string(msg.size()) + " bytes");
    std::size_t before = held_[uw].size();
    for (std::size_t at = 9; at < msg.size();) {
      IPC_ENFORCE(msg.size() - at >= 17 && get_u64(msg.data() + at + 9) <= msg.size() - at - 17,
                  "farm: rank " + std::to_string(w) + " sent a malformed results message");
      IPC_ENFORCE(!held_[uw].empty() && get_u64(msg.data() + at) == held_[uw].front(),
                  "farm: rank " + std::to_string(w) + " answered a task it was not given");
      std::uint64_t i = held_[uw].front(), length = get_u64(msg.data() + at + 9);
      bool ok = static_cast<unsigned>(msg[at + 8]) & kOk;
      std::span<const std::byte> body(msg.data() + at + 17, length);
      at += 17 + length;
      held_[uw].pop_front();
      if (!ok) {
        if (!failure_) failure_ = Failure{i, w, Bytes(body.begin(), body.end())};
      } else {
        record(i, body);
      }
    }
    pace_[uw].timed(get_u64(msg.data() + 1), before - held_[uw].size());
    if (static_cast<unsigned>(msg[0]) & kStarved) pace_[uw].starved();
    if (!held_[uw].empty()) post_result_receive(w);
    feed(w);
  }

  // Task i's result: to the program, the journal and the progress line.
  void record(std::uint64_t i, std::span<const std::byte> result) {
    io_.take_result(i, result);
    have_[i] = true;
    if (journal_) journal_->record(i, result);
    progress_->update(++done_);
  }

  const Communicator& c_;
  const FarmIo& io_;
  const FarmOptions& opt_;
  const int workers_;
  std::vector<bool> alive_;
  std::vector<std::deque<std::uint64_t>> held_;  // tasks in flight, per rank
  std::vector<FarmPace> pace_;
  std::vector<Request> pending_;                 // result receives, per worker
  std::vector<std::shared_ptr<Bytes>> inbox_;
  std::vector<bool> have_;  // tasks whose result io_.take_result has had
  std::size_t task_bytes_ = 0;  // the last task's size (a batch's room)
  std::deque<std::uint64_t> queue_;
  std::size_t done_ = 0;
  std::optional<Journal> journal_;
  std::optional<Progress> progress_;
  std::optional<Failure> failure_;
  Bytes failed_;  // what rank 0 throws, for the workers

 public:
  void fail(const std::string& why) { failed_ = text_bytes(why); }
};

}  // namespace

void farm_bytes(const Communicator& comm, const FarmIo& io, const FarmOptions& opt) {
  if (opt.in_flight < 0)
    throw UsageError("farm: in_flight must be 0 (adaptive) or a number of tasks, not " + std::to_string(opt.in_flight));
  Communicator c = CommAccess::fresh(comm, Purpose::farm);
  if (c.rank() != 0) {
    work_loop(c, io);
    return;
  }
  Dispatcher d(c, io, opt);
  try {
    d.run();
  } catch (const std::exception& e) {
    d.fail(without_origin(e.what()));
    throw;
  }
}

}  // namespace ipc::detail
