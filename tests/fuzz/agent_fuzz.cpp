// The link between ipcrun and its node agents (launcher/link.hpp), read as a byte
// stream the way Link does, and the job message an agent decodes from it. The link is
// trusted, but a garbled stream (a launch agent that prints on stdout, a cut
// connection) must end in a malformed message or a refused job, never in a crash or
// an exception of another kind than documented.
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

#include "agent.hpp"
#include "fuzz.hpp"
#include "link.hpp"

using namespace ipc::launcher;

namespace {

bool same(const AgentJob& a, const AgentJob& b) {
  return a.secret_hex == b.secret_hex && a.job_id == b.job_id && a.size == b.size && a.node == b.node &&
         a.cwd == b.cwd && a.program == b.program && a.argv == b.argv && a.env == b.env && a.ranks == b.ranks &&
         a.tcp_addr == b.tcp_addr && a.first_cpu == b.first_cpu && a.tag_output == b.tag_output &&
         a.stdin_mode == b.stdin_mode && a.link_timeout_ms == b.link_timeout_ms;
}

// What the agent makes of a message's parts as a job: one it can start, or a
// std::runtime_error.
void check_job(const std::vector<std::string>& parts) {
  AgentJob j;
  try {
    j = AgentJob::decode(parts);
  } catch (const std::runtime_error&) {
    return;
  }
  if (j.size < 1 || j.ranks.empty() || j.first_cpu < -1 || j.link_timeout_ms < 0) __builtin_trap();
  for (std::size_t k = 0; k < j.ranks.size(); ++k)
    if (j.ranks[k] < 0 || j.ranks[k] >= j.size || (k > 0 && j.ranks[k] <= j.ranks[k - 1])) __builtin_trap();
  if (!same(AgentJob::decode(j.encode()), j)) __builtin_trap();  // what ipcrun would send of it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  std::size_t at = 0;
  while (at < size) {
    LinkOp op{};
    std::vector<std::string> parts;
    std::size_t used = 0;
    std::string why;
    auto r = decode_link_message(bytes.subspan(at), op, parts, used, &why);
    if (r == ipc::wire::KvDecode::need_more) break;
    if (r == ipc::wire::KvDecode::malformed) {
      if (why.empty()) __builtin_trap();  // the link reports why it gives up
      break;
    }
    if (used < 9 || used > size - at) __builtin_trap();
    auto again = encode_link_message(op, parts);  // what decodes must encode back to the same bytes
    if (again->size() != used || std::memcmp(again->data(), data + at, used) != 0) __builtin_trap();
    check_job(parts);
    at += used;
  }
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  AgentJob j;  // a job of three ranks on one host, every field set
  j.secret_hex = std::string(64, 'f');
  j.job_id = "fuzz";
  j.size = 3;
  j.node = "h";
  j.cwd = "/";
  j.program = "/bin/true";
  j.argv = {"true", "x"};
  j.env = {"K=v"};
  j.ranks = {0, 1, 2};
  j.tcp_addr = "127.0.0.1";
  j.first_cpu = -1;
  j.stdin_mode = "fd";
  j.link_timeout_ms = 100;
  std::vector<std::pair<LinkOp, std::vector<std::string>>> messages = {
      {LinkOp::job, j.encode()},
      {LinkOp::hello, {"node2", "4242", "10.0.0.2", "10.0.0.1", "3f1c0d5e-boot", "8"}},
      {LinkOp::started, {"2", "4243"}},
      {LinkOp::exited, {"2", "256"}},
      {LinkOp::output, {"1", "[2] hello\n[2] world\n"}},
      {LinkOp::put, {"card/2", "node2 10.0.0.2:40000"}},
      {LinkOp::fenced, {"card/2", "a", "card/3", "b"}},
      {LinkOp::signal, {"15"}},
      {LinkOp::stdin_data, {"some input\n"}},
      {LinkOp::heartbeat, {}},
      {LinkOp::quit, {}},
  };
  std::vector<std::vector<std::uint8_t>> out;
  std::vector<std::uint8_t> stream;  // all of them, one after the other
  for (auto& [op, parts] : messages) {
    auto e = encode_link_message(op, parts);
    auto* b = reinterpret_cast<const std::uint8_t*>(e->data());
    out.emplace_back(b, b + e->size());
    stream.insert(stream.end(), b, b + e->size());
  }
  out.push_back(stream);
  return out;
}
