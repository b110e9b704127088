// A bounded soak: rounds of random traffic (sizes 0 B to 300 KiB, so eager and
// rendezvous mix; random peers and tags; some receives by wildcard), every payload
// checked, with collectives between rounds. All ranks draw the same plan from one
// seed, so each knows what it must receive.
//   stress [rounds] [seed]
#include <ipc/ipc.hpp>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "check.hpp"

namespace {

struct Msg {
  int src, dst, tag;
  std::size_t size;
  std::uint32_t id;
};

std::uint8_t byte_of(std::uint32_t id, std::size_t i) { return static_cast<std::uint8_t>(id * 2654435761u + i * 31); }

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  int me = c.rank(), n = c.size();
  int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
  std::mt19937 rng(argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 7u);
  std::uint32_t next_id = 1;
  std::uint64_t checksum = 0;
  for (int round = 0; round < rounds; ++round) {
    std::vector<Msg> plan;
    int count = 5 + static_cast<int>(rng() % 30);
    for (int k = 0; k < count; ++k) {
      Msg m;
      m.src = static_cast<int>(rng() % n);
      m.dst = static_cast<int>(rng() % n);
      m.tag = static_cast<int>(rng() % 3);
      std::size_t r = rng() % 100;
      m.size = r < 60 ? rng() % 256 : r < 90 ? rng() % 70000 : rng() % 300000;
      m.id = next_id++;
      plan.push_back(m);
    }
    // Receives: by exact source and tag, or (when this rank receives only one message
    // of that tag this round) by wildcard source.
    std::vector<std::vector<std::uint8_t>> in;
    std::vector<const Msg*> expect;
    std::vector<ipc::Request> reqs;
    for (auto& m : plan)
      if (m.dst == me) {
        in.emplace_back();
        expect.push_back(&m);
      }
    for (std::size_t i = 0; i < expect.size(); ++i) {
      const Msg& m = *expect[i];
      int same_tag = 0;
      for (auto* e : expect) same_tag += e->tag == m.tag;
      int src = same_tag == 1 && (m.id % 2) ? ipc::any_source : m.src;
      reqs.push_back(c.irecv(in[i], src, ipc::Tag{m.tag}));
    }
    std::vector<std::vector<std::uint8_t>> out;
    out.reserve(plan.size());
    for (auto& m : plan)
      if (m.src == me) {
        out.emplace_back(m.size);
        for (std::size_t i = 0; i < m.size; ++i) out.back()[i] = byte_of(m.id, i);
        reqs.push_back(c.isend(out.back(), m.dst, ipc::Tag{m.tag}));
      }
    auto st = ipc::wait_all(reqs);
    // Messages of one (source, tag) arrive in plan order; check each payload.
    for (std::size_t i = 0; i < expect.size(); ++i) {
      const Msg& m = *expect[i];
      IT_CHECK(me, st[i].source == m.src && st[i].tag == ipc::Tag{m.tag},
               "round %d: message %u from %d tag %d came from %d tag %d", round, m.id, m.src, m.tag, st[i].source,
               st[i].tag.value);
      IT_CHECK(me, in[i].size() == m.size, "round %d: message %u has %zu bytes, expected %zu", round, m.id,
               in[i].size(), m.size);
      for (std::size_t b = 0; b < m.size; b += 1 + m.size / 64)
        IT_CHECK(me, in[i][b] == byte_of(m.id, b), "round %d: message %u byte %zu", round, m.id, b);
      checksum += m.id;
    }
    // Everyone agrees on how much was received.
    std::uint64_t total = c.allreduce(checksum);
    std::uint64_t expect_total = 0;
    for (std::uint32_t id = 1; id < next_id; ++id) expect_total += id;
    IT_CHECK(me, total == expect_total, "round %d: checksums %llu vs %llu", round,
             static_cast<unsigned long long>(total), static_cast<unsigned long long>(expect_total));
    if (round % 5 == 0) c.barrier();
  }
  return 0;
}
