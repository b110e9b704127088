// A home rank's queue (see home.hpp).
#include "api/home.hpp"

#include <cstring>
#include <iostream>

#include "base/errors.hpp"
#include "base/params.hpp"
#include "core/context.hpp"
#include "core/engine.hpp"
#include "wire/bytes.hpp"

namespace ipc::detail {

namespace {
constexpr int kRequestTag = 0;
constexpr auto kLookForGone = std::chrono::milliseconds(100);
}  // namespace

std::optional<Communicator> tools_node(const Communicator& comm) {
  std::string mode = base::param_checked("IPC_TOOLS_HOME");  // auto or always
  Communicator node = comm.split_by_node();
  if (mode == "always" || node.size() != comm.size()) return std::nullopt;
  return node;
}

Home::Home(const Communicator& comm, std::unique_ptr<HomeState> state, std::string what)
    : comm_(comm),
      requests_(CommAccess::fresh(comm, Purpose::tools)),
      answers_(CommAccess::fresh(comm, Purpose::tools)),
      what_(std::move(what)) {
  if (comm_.rank() == 0) {
    state_ = std::move(state);
    service_ = std::thread([this] { serve(); });
  }
}

Home::~Home() {
  try {
    tell(kBye, {});
  } catch (const std::exception&) {  // the home is gone: nobody to tell
  }
  if (service_.joinable()) service_.join();
}

std::vector<std::byte> Home::message(std::uint8_t op, std::uint32_t id, std::span<const std::byte> payload) const {
  std::vector<std::byte> m;
  m.reserve(5 + payload.size());
  wire::put_int(m, op);
  wire::put_int(m, id);
  m.insert(m.end(), payload.begin(), payload.end());
  return m;
}

void Home::home_lost(const std::exception& e) const {
  throw PeerLost(what_ + ": its host, " + CommAccess::where(comm_, 0) + ", is gone (" + without_origin(e.what()) + ")",
                 CommAccess::job_rank(comm_, 0));
}

std::vector<std::byte> Home::ask_here(std::uint8_t op, std::span<const std::byte> payload, Clock::time_point deadline) {
  std::uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed) & 0x7fffffffu;
  {
    std::lock_guard lk(state_mu_);
    state_->request(*this, 0, id, op, payload);
  }
  std::unique_lock lk(here_mu_);
  auto answered = [&] { return here_answers_.count(id) > 0; };
  if (deadline == Clock::time_point::max()) {
    here_cv_.wait(lk, answered);
  } else if (!here_cv_.wait_until(lk, deadline, answered)) {
    lk.unlock();
    {
      std::lock_guard sl(state_mu_);
      state_->withdraw(*this, 0, id);
    }
    lk.lock();
    here_cv_.wait(lk, answered);
  }
  auto node = here_answers_.extract(id);
  return std::move(node.mapped());
}

std::vector<std::byte> Home::ask(std::uint8_t op, std::span<const std::byte> payload, Clock::time_point deadline) {
  if (state_) return ask_here(op, payload, deadline);
  std::uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed) & 0x7fffffffu;
  auto into = std::make_shared<std::vector<std::byte>>();
  Request reply = CommAccess::irecv_bytes(answers_, 0, Tag{static_cast<int>(id)}, into);
  try {
    requests_.send(message(op, id, payload), 0, Tag{kRequestTag});
    if (deadline != Clock::time_point::max() &&
        !CommAccess::wait_until(answers_, [&] { return reply.done(); }, deadline))
      requests_.send(message(kWithdraw, id, {}), 0, Tag{kRequestTag});
    reply.wait();
  } catch (const PeerLost& e) {
    home_lost(e);
  }
  return std::move(*into);
}

void Home::tell(std::uint8_t op, std::span<const std::byte> payload) {
  try {
    requests_.send(message(op, 0, payload), 0, Tag{kRequestTag});
  } catch (const PeerLost& e) {
    home_lost(e);
  }
}

void Home::answer(int rank, std::uint32_t id, std::span<const std::byte> payload) {
  if (rank == 0) {
    {
      std::lock_guard lk(here_mu_);
      here_answers_[id].assign(payload.begin(), payload.end());
    }
    here_cv_.notify_all();
    return;
  }
  try {
    answers_.send(std::vector<std::byte>(payload.begin(), payload.end()), rank, Tag{static_cast<int>(id)});
  } catch (const PeerLost&) {  // it asked and died: the loss is seen by the next look
  }
}

void Home::serve() {
  Engine::yield_first_on_this_thread();
  const int n = comm_.size();
  std::vector<char> ended(static_cast<std::size_t>(n), 0);  // said goodbye or gone
  int open = n;
  auto buf = std::make_shared<std::vector<std::byte>>();
  Request pending = CommAccess::irecv_bytes(requests_, any_source, Tag{kRequestTag}, buf);
  auto last_look = Clock::now();
  auto look_for_gone = [&] {
    last_look = Clock::now();
    for (int r = 0; r < n; ++r)
      if (!ended[static_cast<std::size_t>(r)] && r != 0 && CommAccess::gone(requests_, r)) {
        ended[static_cast<std::size_t>(r)] = 1;
        --open;
        std::lock_guard lk(state_mu_);
        state_->gone(*this, r);
      }
  };
  while (open > 0) {
    try {
      if (!CommAccess::wait_until(requests_, [&] { return pending.done(); }, last_look + kLookForGone)) {
        look_for_gone();
        continue;
      }
      if (Clock::now() - last_look > kLookForGone) look_for_gone();
      auto msg = std::move(buf);
      Request req = std::move(pending);
      buf = std::make_shared<std::vector<std::byte>>();
      pending = CommAccess::irecv_bytes(requests_, any_source, Tag{kRequestTag}, buf);
      Status st = req.wait();  // a sender that died mid-message fails it: dropped
      if (msg->size() < 5) continue;
      auto op = wire::get_int<std::uint8_t>(msg->data());
      auto id = wire::get_int<std::uint32_t>(msg->data() + 1);
      std::span<const std::byte> payload(msg->data() + 5, msg->size() - 5);
      auto& done = ended[static_cast<std::size_t>(st.source)];
      if (op == kBye) {
        if (!done) {
          done = 1;
          --open;
        }
        continue;
      }
      std::lock_guard lk(state_mu_);
      if (op == kWithdraw)
        state_->withdraw(*this, st.source, id);
      else if (!done)
        state_->request(*this, st.source, id, op, payload);
    } catch (const std::exception& e) {
      std::cerr << "ipc: rank " << comm_.rank() << ": " << what_ << " home: " << without_origin(e.what()) << std::endl;
    }
  }
  CommAccess::cancel(pending);
}

}  // namespace ipc::detail
