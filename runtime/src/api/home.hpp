// A home rank's queue: how semaphores, mutexes and channels work when their
// communicator's ranks span nodes (or IPC_TOOLS_HOME=always), where no memory is
// shared by all of them. The communicator's rank 0 (the home) keeps the tool's state
// on a service thread of its own; every rank, the home too, asks it with a message and
// waits for the answer, so the home's program never has to be in the library for the
// others to progress. The home's own requests go to the state directly (under the
// state's lock), their answers through memory: no message, no thread hand-off.
//
//   request  (requests context, tag 0)   op (u8), id (u32), the tool's payload
//   answer   (answers context, tag = id) the tool's payload
//
// The asker posts the answer's receive before it sends the request. A timed request
// whose deadline passes is withdrawn (op kWithdraw); the home then answers it once, either
// with what it was given before the withdrawal arrived or as withdrawn: the asker takes
// whichever answer comes, so nothing granted is ever dropped.
//
// The service looks for gone ranks every 100 ms and gives back what they held
// (HomeState::gone). It ends when every rank has said goodbye (op kBye, from each rank's
// destructor) or is gone; a rank asking a home that is gone fails with ipc::PeerLost.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipc/communicator.hpp"

namespace ipc::detail {

class Home;

/// The tool's state on the home, and its answers (called on the service thread only).
class HomeState {
 public:
  virtual ~HomeState() = default;
  /// A request of `rank`; answered now (Home::answer) or later.
  virtual void request(Home& home, int rank, std::uint32_t id, std::uint8_t op, std::span<const std::byte> payload) = 0;
  /// `rank` withdraws request `id`: answer it if it is still waiting (it was not answered).
  virtual void withdraw(Home& home, int rank, std::uint32_t id) = 0;
  /// `rank` is gone: give back what it held, forget what it waited for.
  virtual void gone(Home& home, int rank) = 0;
};

class Home {
  using Clock = std::chrono::steady_clock;

 public:
  static constexpr std::uint8_t kWithdraw = 0xff, kBye = 0xfe;  // the tools' ops are below

  /// Collective over `comm`; `state` is the home's (rank 0's) and ignored elsewhere.
  /// `what` names the tool in errors ("semaphore").
  Home(const Communicator& comm, std::unique_ptr<HomeState> state, std::string what);
  /// Says goodbye; the home waits for every rank's goodbye (or loss) before it ends.
  ~Home();
  Home(const Home&) = delete;
  Home& operator=(const Home&) = delete;

  /// Asks the home and returns its answer. Past `deadline` the request is withdrawn
  /// and the answer that then comes is returned (the tool's own, or its "withdrawn").
  /// @throws ipc::PeerLost when the home is gone.
  std::vector<std::byte> ask(std::uint8_t op, std::span<const std::byte> payload,
                             Clock::time_point deadline = Clock::time_point::max());
  /// From HomeState: answers request `id` of `rank` (a rank that is gone meanwhile is
  /// skipped).
  void answer(int rank, std::uint32_t id, std::span<const std::byte> payload);

  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }

 private:
  /// Tells the home something that needs no answer.
  void tell(std::uint8_t op, std::span<const std::byte> payload);
  void serve();
  std::vector<std::byte> ask_here(std::uint8_t op, std::span<const std::byte> payload, Clock::time_point deadline);
  std::vector<std::byte> message(std::uint8_t op, std::uint32_t id, std::span<const std::byte> payload) const;
  [[noreturn]] void home_lost(const std::exception& e) const;

  Communicator comm_;
  Communicator requests_, answers_;
  std::string what_;
  std::unique_ptr<HomeState> state_;
  std::mutex state_mu_;  // the service thread and the home's own requests
  // The answers to the home's own requests, by id.
  std::mutex here_mu_;
  std::condition_variable here_cv_;
  std::map<std::uint32_t, std::vector<std::byte>> here_answers_;
  std::atomic<std::uint32_t> next_id_{0};
  std::thread service_;
};

/// Where a tool made on `comm` keeps its state (collective): comm's ranks as a
/// communicator of their node when they share one (shared memory), std::nullopt when a
/// home rank keeps it (they span nodes, or IPC_TOOLS_HOME=always).
std::optional<Communicator> tools_node(const Communicator& comm);

}  // namespace ipc::detail
