// Hang diagnosis, the rank's side. Under ipcrun (IPC_DUMP_MARK set) a rank answers
// SIGURG with a report on its standard error: what each of its blocked threads waits
// for (operation, communicator, peer, tag, bytes, for how long), the collective it
// entered last, its queues (posted receives, unexpected messages, rendezvous in
// flight) and the peers it has lost. Every line starts with the mark, so that its
// agent takes the lines out of the rank's output and sends them to ipcrun, which
// prints one block per rank and a summary (launcher/dump.hpp).
//
// The signal handler only sets a flag and writes an eventfd that the engine's sleepers
// watch; the report is written by whichever thread wakes: the progress thread (it
// looks at least every 100 ms) or a waiter between naps. SIGURG is ignored by default,
// so a process that has no Runtime yet (or any more) is not harmed by one.
//
// What a thread waits for is noted cheaply: a thread-local note (a pointer store) set
// by Engine::wait and by every collective, read by the report only while the thread
// is registered as blocked (after its first polls, where it counts as a waiter).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ipc::detail {

struct RequestState;
class Engine;

/// What this thread is doing in the library (thread-local).
struct OpNote {
  const RequestState* req = nullptr;  // the request it waits for
  const char* what = nullptr;         // or a description ("probe", "wait_any", ...)
  const char* coll = nullptr;         // the collective it is in, if any
  std::uint32_t coll_ctx = 0;
  std::uint64_t coll_seq = 0;
};
OpNote& op_note();

/// Notes that this thread runs collective `op` (number `seq` on context `ctx`) for
/// as long as it lives.
class CollectiveNote {
 public:
  CollectiveNote(Engine& e, std::uint32_t ctx, const char* op);
  ~CollectiveNote();
  CollectiveNote(const CollectiveNote&) = delete;
  CollectiveNote& operator=(const CollectiveNote&) = delete;

 private:
  OpNote saved_;
};

namespace diag {
/// Installs the SIGURG handler when IPC_DUMP_MARK is set (a rank under ipcrun).
void install();
/// Back to ignoring SIGURG (the Runtime ends).
void uninstall();
/// The eventfd a report request makes readable, or -1.
int wake_fd();
/// True once per request (and drains the eventfd).
bool take_request();
/// The mark every report line starts with.
const std::string& mark();
/// What the rank does outside the engine's waits (the job's last fence), or null.
void set_phase(const char* phase);
const char* phase();
}  // namespace diag

/// "world", "communicator 3", "rpc #1", "the collectives of world", ...
std::string describe_context(std::uint32_t ctx);

}  // namespace ipc::detail
