// The bootstrap stores: the in-memory one with ranks as threads, and the TCP client
// against ipcrun's real key-value server on loopback.
#include <gtest/gtest.h>

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <thread>

#include "bootstrap/store.hpp"
#include "ipc/errors.hpp"
#include "kv_server.hpp"
#include "wire/handshake.hpp"

using namespace ipc;
using namespace std::chrono_literals;

TEST(MemoryStore, PutGetFenceWithThreads) {
  bootstrap::MemoryStore store(4);
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 4; ++r) {
    ranks.emplace_back([&, r] {
      store.put("card/" + std::to_string(r), "rank" + std::to_string(r));
      auto all = store.fence();
      bool good = all.size() == 4;
      for (int p = 0; p < 4; ++p) good = good && all["card/" + std::to_string(p)] == "rank" + std::to_string(p);
      good = good && store.get("card/" + std::to_string((r + 1) % 4), 1s) == "rank" + std::to_string((r + 1) % 4);
      store.fence();  // a second generation works too
      if (good) ++ok;
    });
  }
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok, 4);
}

TEST(MemoryStore, GetTimesOut) {
  bootstrap::MemoryStore store(1);
  EXPECT_THROW(store.get("missing", 20ms), Timeout);
}

namespace {

// ipcrun's server on its own thread.
struct Server {
  asio::io_context io;
  wire::Secret secret = wire::make_secret();
  std::vector<std::string> logs, reports;
  std::mutex mu;
  std::unique_ptr<launcher::KvServer> kv;
  std::thread thread;

  explicit Server(int size) {
    launcher::KvServerHooks hooks;
    hooks.log = [this](const std::string& s) {
      std::lock_guard lk(mu);
      logs.push_back(s);
    };
    hooks.report = [this](const std::string& s) {
      std::lock_guard lk(mu);
      reports.push_back(s);
    };
    kv = std::make_unique<launcher::KvServer>(io, secret, size,
                                              asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), hooks);
    thread = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      io.run();
    });
  }
  ~Server() {
    asio::post(io, [this] {
      kv->stop();
      io.stop();
    });
    thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(kv->port()); }
  std::size_t log_count() {
    std::lock_guard lk(mu);
    return logs.size();
  }
};

}  // namespace

TEST(TcpStore, PutGetFenceAgainstIpcrunServer) {
  Server srv(3);
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back([&, r] {
      bootstrap::TcpStore store(srv.address(), srv.secret, r, 5s);
      if (r == 0) {
        // A get issued before the put is held until the put arrives.
        if (store.get("late", 5s) != "value") return;
      }
      if (r == 2) store.put("late", "value");
      store.put("card/" + std::to_string(r), std::string(1000 * (r + 1), static_cast<char>('a' + r)));
      auto all = store.fence();
      bool good = all.size() == 4;
      for (int p = 0; p < 3; ++p) good = good && all["card/" + std::to_string(p)].size() == 1000u * (p + 1);
      store.report("line from " + std::to_string(r));
      store.fence();
      if (good) ++ok;
    });
  }
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok, 3);
  // Reports come out when the fence after them completes, ordered by rank.
  std::lock_guard lk(srv.mu);
  EXPECT_EQ(srv.reports, (std::vector<std::string>{"line from 0", "line from 1", "line from 2"}));
}

TEST(TcpStore, GetTimesOut) {
  Server srv(1);
  bootstrap::TcpStore store(srv.address(), srv.secret, 0, 5s);
  EXPECT_THROW(store.get("never", 50ms), Timeout);
}

TEST(TcpStore, WrongSecretIsRefused) {
  Server srv(1);
  EXPECT_THROW(bootstrap::TcpStore(srv.address(), wire::make_secret(), 0, 5s), BootstrapError);
}

TEST(TcpStore, StrangersAreDroppedAndOthersStillServed) {
  Server srv(1);
  {
    // Garbage instead of a handshake.
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.kv->port()));
    std::string junk(44, 'Z');
    asio::write(s, asio::buffer(junk));
    char c;
    asio::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);  // the server closes without a word
    EXPECT_TRUE(ec);
  }
  {
    // A valid-looking handshake with the wrong secret, followed by a put: the put must
    // never reach the store.
    wire::ClientHandshake hs(wire::make_secret(), wire::Role::bootstrap, 0);
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.kv->port()));
    asio::write(s, asio::buffer(hs.hello().data(), hs.hello().size()));
    std::array<std::byte, wire::kServerHelloSize> reply;
    asio::read(s, asio::buffer(reply));
    std::array<std::byte, wire::kClientProofSize> forged{};
    asio::write(s, asio::buffer(forged));
    auto put = wire::encode({wire::KvOp::put, {"stolen", "yes"}});
    asio::error_code ec;
    asio::write(s, asio::buffer(put), ec);
    char c;
    s.read_some(asio::buffer(&c, 1), ec);
    EXPECT_TRUE(ec);
  }
  for (int i = 0; i < 200 && srv.log_count() < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(srv.log_count(), 2u);
  bootstrap::TcpStore store(srv.address(), srv.secret, 0, 5s);
  EXPECT_THROW(store.get("stolen", 100ms), Timeout);
  store.put("k", "v");
  EXPECT_EQ(store.get("k", 1s), "v");
}
