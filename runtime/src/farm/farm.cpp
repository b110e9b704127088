// The task farm over bytes (farm.hpp has the contract).
//
// Messages, on a context of the farm's own (0x20000000 + the how-many-th farm call;
// every rank counts the same, farms being collective):
//   task    rank 0 -> worker   tag 1   u64 index, task bytes
//   result  worker -> rank 0   tag 2   u64 index, u8 ok, result bytes | error text
//   stop    rank 0 -> worker   tag 3   (empty)
// Rank 0 keeps one receive posted per busy worker, naming that worker: a receive that
// names a rank fails with PeerLost when the rank dies, which is how rank 0 learns
// that the worker's tasks must go to the others. A worker answers its tasks in the
// order it got them.
//
// Journal: "IPCFARM1", u64 task count, u64 hash of the tasks' bytes, then records
// (u64 index, u64 length, result bytes) appended as results come. A record cut short
// by a crash is dropped when the file is read back.
#include "ipc/farm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>

#include "base/errors.hpp"
#include "ipc/detail/transfer.hpp"
#include "ipc/request.hpp"
#include "wire/bytes.hpp"
#include "base/hash.hpp"

namespace ipc::detail {
namespace {

constexpr int kTask = 1, kResult = 2, kStop = 3;
constexpr std::uint32_t kFarmContexts = 0x20000000u;
constexpr char kMagic[8] = {'I', 'P', 'C', 'F', 'A', 'R', 'M', '1'};

std::atomic<std::uint32_t> g_farms{0};

using clock = std::chrono::steady_clock;

void put_u64(Bytes& b, std::uint64_t v) { wire::put_int(b, v); }
std::uint64_t get_u64(const std::byte* p) { return wire::get_int<std::uint64_t>(p); }

std::uint64_t hash_tasks(const std::vector<Bytes>& tasks) {
  std::uint64_t h = base::kFnvBasis;
  for (auto& t : tasks) {
    std::uint64_t n = t.size();
    h = base::fnv1a(h, &n, sizeof n);
    h = base::fnv1a(h, t.data(), t.size());
  }
  return h;
}

// Results that a previous run of the same task list left in the journal; the file is
// then open for appending.
class Journal {
 public:
  Journal(const std::string& path, const std::vector<Bytes>& tasks, std::vector<std::optional<Bytes>>& results)
      : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("farm: cannot open journal " + path + ": " + std::strerror(errno));
    Bytes head;
    head.insert(head.end(), reinterpret_cast<const std::byte*>(kMagic), reinterpret_cast<const std::byte*>(kMagic) + 8);
    put_u64(head, tasks.size());
    put_u64(head, hash_tasks(tasks));
    Bytes file = read_all();
    if (file.empty()) {
      write_all(head);
      return;
    }
    if (file.size() < head.size() || std::memcmp(file.data(), head.data(), 8) != 0) {
      ::close(fd_);
      throw Error("farm: " + path + " is not a farm journal");
    }
    if (std::memcmp(file.data(), head.data(), head.size()) != 0) {
      ::close(fd_);
      throw Error("farm: journal " + path + " was written for another task list (" +
                  std::to_string(get_u64(file.data() + 8)) + " tasks, or different ones); remove it to start over");
    }
    std::size_t at = head.size();
    while (at + 16 <= file.size()) {
      std::uint64_t index = get_u64(file.data() + at), len = get_u64(file.data() + at + 8);
      if (index >= tasks.size() || len > file.size() - at - 16) break;
      results[index] = Bytes(file.begin() + static_cast<std::ptrdiff_t>(at + 16),
                             file.begin() + static_cast<std::ptrdiff_t>(at + 16 + len));
      at += 16 + len;
      ++resumed_;
    }
    if (at < file.size() && ::ftruncate(fd_, static_cast<off_t>(at)) != 0) {
      ::close(fd_);
      throw Error("farm: cannot cut the torn end off journal " + path + ": " + std::strerror(errno));
    }
    ::lseek(fd_, static_cast<off_t>(at), SEEK_SET);
  }
  ~Journal() {
    if (fd_ < 0) return;
    ::fdatasync(fd_);  // the farm's results survive a crash of the machine, too
    ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void record(std::uint64_t index, const Bytes& result) {
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

void work_loop(const Communicator& c, const std::function<Bytes(const Bytes&)>& work) {
  for (;;) {
    Bytes msg;
    Status st = c.recv(msg, 0, any_tag);
    if (st.tag.value == kStop) return;
    if (msg.size() < 8) throw ProtocolError("farm: a task message of " + std::to_string(msg.size()) + " bytes");
    std::uint64_t index = get_u64(msg.data());
    Bytes task(msg.begin() + 8, msg.end());
    Bytes reply;
    put_u64(reply, index);
    try {
      Bytes result = work(task);
      reply.push_back(std::byte{1});
      reply.insert(reply.end(), result.begin(), result.end());
    } catch (...) {
      std::string what = describe_current();
      reply.push_back(std::byte{0});
      reply.insert(reply.end(), reinterpret_cast<const std::byte*>(what.data()),
                   reinterpret_cast<const std::byte*>(what.data()) + what.size());
    }
    c.send(reply, 0, Tag{kResult});
  }
}

}  // namespace

std::vector<Bytes> farm_bytes(const Communicator& comm, const std::vector<Bytes>& tasks,
                              const std::function<Bytes(const Bytes&)>& work, const FarmOptions& opt) {
  if (opt.in_flight < 1) throw UsageError("farm: in_flight must be at least 1");
  Communicator c(comm.engine(), kFarmContexts + g_farms.fetch_add(1), comm.rank(), comm.size());
  if (c.rank() != 0) {
    work_loop(c, work);
    return {};
  }
  // Whatever happens on rank 0 (a bad journal, a failed task), the workers are told
  // to stop: they wait for nothing else.
  std::vector<bool> alive(static_cast<std::size_t>(c.size()), true);
  struct StopWorkers {
    const Communicator& c;
    const std::vector<bool>& alive;
    ~StopWorkers() {
      for (int w = 1; w < c.size(); ++w) {
        if (!alive[static_cast<std::size_t>(w)]) continue;
        try {
          c.send(Bytes{}, w, Tag{kStop});
        } catch (const std::exception&) {
        }
      }
    }
  } stop_workers{c, alive};
  const std::size_t total = tasks.size();
  std::vector<std::optional<Bytes>> results(total);
  std::optional<Journal> journal;
  if (!opt.journal.empty()) journal.emplace(opt.journal, tasks, results);
  std::deque<std::uint64_t> queue;
  for (std::uint64_t i = 0; i < total; ++i)
    if (!results[i]) queue.push_back(i);
  std::size_t done = total - queue.size();
  Progress progress(opt.progress, total, done);

  auto finish = [&] {
    std::vector<Bytes> out;
    out.reserve(total);
    for (auto& r : results) out.push_back(std::move(*r));
    progress.update(total, true);
    return out;
  };

  if (c.size() == 1) {  // no workers: rank 0 does the work
    for (std::uint64_t i : queue) {
      try {
        results[i] = work(tasks[i]);
      } catch (...) {
        std::string what = describe_current();
        task_failed(i, 0, Bytes(reinterpret_cast<const std::byte*>(what.data()),
                                reinterpret_cast<const std::byte*>(what.data()) + what.size()));
      }
      if (journal) journal->record(i, *results[i]);
      progress.update(++done);
    }
    return finish();
  }

  const int workers = c.size() - 1;
  std::vector<std::deque<std::uint64_t>> held(static_cast<std::size_t>(c.size()));  // tasks in flight, per rank
  std::vector<Request> pending(static_cast<std::size_t>(c.size()));  // result receives, per worker
  // The receives own their buffers: if rank 0 leaves by an exception, a result that
  // lands later lands in memory nobody has freed.
  std::vector<std::shared_ptr<Bytes>> inbox(static_cast<std::size_t>(c.size()));
  auto post_result_receive = [&](int w) {
    auto uw = static_cast<std::size_t>(w);
    auto buf = inbox[uw] = std::make_shared<Bytes>();
    RecvTarget target{[buf](std::size_t n) -> void* {
                        buf->resize(n);
                        return buf->data();
                      },
                      {}};
    pending[uw] = Request(post_recv(c.engine(), c.context(), w, kResult, std::move(target)));
  };
  std::optional<std::pair<std::uint64_t, std::pair<int, Bytes>>> failure;

  auto lose = [&](int w) {
    auto uw = static_cast<std::size_t>(w);
    alive[uw] = false;
    pending[uw] = Request();
    for (auto it = held[uw].rbegin(); it != held[uw].rend(); ++it) queue.push_front(*it);
    held[uw].clear();
  };
  // Gives worker w tasks up to in_flight, without waiting for them to arrive (a
  // worker may be sending a large result meanwhile); its result receive is posted
  // first and stays posted while it holds any task.
  auto feed = [&](int w) {
    auto uw = static_cast<std::size_t>(w);
    while (alive[uw] && !failure && !queue.empty() && held[uw].size() < static_cast<std::size_t>(opt.in_flight)) {
      if (!pending[uw].valid()) post_result_receive(w);
      std::uint64_t i = queue.front();
      Bytes msg;
      msg.reserve(8 + tasks[i].size());
      put_u64(msg, i);
      msg.insert(msg.end(), tasks[i].begin(), tasks[i].end());
      // The request owns the bytes and completes in the background; a worker that
      // is gone shows up through its result receive.
      c.isend(std::move(msg), w, Tag{kTask});
      queue.pop_front();
      held[uw].push_back(i);
    }
  };

  for (int w = 1; w <= workers; ++w) feed(w);
  for (;;) {
    bool busy = false;
    for (int w = 1; w <= workers; ++w) busy |= pending[static_cast<std::size_t>(w)].valid();
    if (!busy) {
      if (failure || queue.empty()) break;
      bool any = false;
      for (int w = 1; w <= workers; ++w) any |= alive[static_cast<std::size_t>(w)];
      if (!any)
        throw Error("farm: every worker is gone; " + std::to_string(queue.size()) + " of " + std::to_string(total) +
                    " tasks are not done");
      for (int w = 1; w <= workers; ++w) feed(w);
      continue;
    }
    Status st;
    std::size_t w;
    try {
      w = wait_any(pending, &st);
    } catch (const PeerLost&) {
      // wait_any names no index when the wait fails: find the worker that is gone.
      // wait_any reset the failed receive: the live worker that holds tasks but has
      // no receive posted is the one.
      for (int q = 1; q <= workers; ++q) {
        auto uq = static_cast<std::size_t>(q);
        if (!pending[uq].valid() && alive[uq] && !held[uq].empty()) lose(q);
      }
      for (int q = 1; q <= workers; ++q) feed(q);
      continue;
    }
    Bytes& msg = *inbox[w];
    if (msg.size() < 9 || held[w].empty() || get_u64(msg.data()) != held[w].front())
      throw ProtocolError("farm: rank " + std::to_string(w) + " answered a task it was not given");
    std::uint64_t i = held[w].front();
    held[w].pop_front();
    Bytes body(msg.begin() + 9, msg.end());
    if (msg[8] == std::byte{0}) {
      if (!failure) failure.emplace(i, std::make_pair(static_cast<int>(w), std::move(body)));
    } else {
      if (journal) journal->record(i, body);
      results[i] = std::move(body);
      progress.update(++done);
    }
    if (!held[w].empty()) post_result_receive(static_cast<int>(w));
    feed(static_cast<int>(w));
  }
  if (failure) task_failed(failure->first, failure->second.first, failure->second.second);
  return finish();
}

}  // namespace ipc::detail
