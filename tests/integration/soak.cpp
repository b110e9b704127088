// A soak: a million messages in all (by default) between random pairs of ranks, of
// random sizes (mostly up to 256 B, a fifth up to 64 KiB, one in 500 up to 256 KiB: by
// rendezvous), every byte checked; and resident memory that stays flat over the
// second half. Rounds of messages that every rank draws from one seed, so each knows
// what it sends and receives: posted all at once, non-blocking, then waited for, so
// nothing depends on the order ranks get to them (no deadlock). Half the receives are
// by exact source and a tag shared with other messages (they match in send order),
// half by any_source and a tag of their own.
//   soak [messages] [seed]
#include <ipc/ipc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

constexpr int kPerRound = 512;             // messages of all ranks in one round
constexpr long kRssGrowthLimit = 16 << 20;  // bytes, between half-way and the end

struct Msg {
  int src, dst;
  std::size_t size;
  std::uint32_t id;
  bool wildcard;  // received by any_source, tag 4 + id; else by source, tag id % 4
  ipc::Tag tag() const { return ipc::Tag{wildcard ? 4 + static_cast<int>(id) : static_cast<int>(id % 4)}; }
};

std::uint64_t mix(std::uint64_t z) {  // splitmix64
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The payload of message `id` from `src`: a function of both, 8 bytes at a time.
std::uint64_t key_of(const Msg& m) { return mix((std::uint64_t(m.src) << 32) ^ m.id); }

void fill(std::vector<std::uint8_t>& buf, std::uint64_t key) {
  std::size_t n = buf.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = mix(key + i);
    std::memcpy(buf.data() + i, &w, 8);
  }
  if (i < n) {
    std::uint64_t w = mix(key + i);
    std::memcpy(buf.data() + i, &w, n - i);
  }
}

// The offset of the first wrong byte, or buf.size().
std::size_t first_wrong(const std::vector<std::uint8_t>& buf, std::uint64_t key) {
  std::size_t n = buf.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = mix(key + i);
    if (std::memcmp(buf.data() + i, &w, 8) != 0) break;
  }
  if (i < n) {
    std::uint64_t w = mix(key + i);
    auto* want = reinterpret_cast<const std::uint8_t*>(&w);
    for (std::size_t k = 0; i + k < n && k < 8; ++k)
      if (buf[i + k] != want[k]) return i + k;
  }
  return n;
}

std::size_t draw_size(std::mt19937_64& rng) {
  auto r = rng() % 1000;
  if (r < 798) return rng() % 257;  // 0 .. 256 B
  if (r < 998) {  // 256 B .. 64 KiB
    std::size_t base = std::size_t{256} << (rng() % 8);
    return base + rng() % (base + 1);
  }
  return 65537 + rng() % (256 * 1024 - 65536);  // rendezvous, up to 256 KiB
}

long rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) * 1024;
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  ipc::Runtime rt;
  auto& c = rt.world();
  const int me = c.rank(), n = c.size();
  const long total = argc > 1 ? std::atol(argv[1]) : 1000000;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
  const long rounds = (total + kPerRound - 1) / kPerRound;
  auto start = std::chrono::steady_clock::now();

  std::uint32_t next_id = 0;
  std::uint64_t received = 0, bytes = 0;
  long rss_half = -1;
  for (long round = 0; round < rounds; ++round) {
    std::vector<Msg> plan;
    long count = std::min<long>(kPerRound, total - round * kPerRound);
    for (long k = 0; k < count; ++k) {
      Msg m;
      m.src = static_cast<int>(rng() % static_cast<unsigned>(n));
      m.dst = static_cast<int>(rng() % static_cast<unsigned>(n));
      m.size = draw_size(rng);
      m.wildcard = rng() % 2 == 1;
      m.id = next_id++;
      plan.push_back(m);
    }
    // Receives first, then sends (half moved into their requests), all in plan order.
    std::vector<const Msg*> expect;
    for (auto& m : plan)
      if (m.dst == me) expect.push_back(&m);
    std::vector<std::vector<std::uint8_t>> in(expect.size());
    std::vector<ipc::Request> recvs;
    for (std::size_t i = 0; i < expect.size(); ++i)
      recvs.push_back(c.irecv(in[i], expect[i]->wildcard ? ipc::any_source : expect[i]->src, expect[i]->tag()));
    std::vector<std::vector<std::uint8_t>> out;
    out.reserve(plan.size());  // no reallocation: requests point into it
    std::vector<ipc::Request> sends;
    for (auto& m : plan) {
      if (m.src != me) continue;
      std::vector<std::uint8_t> buf(m.size);
      fill(buf, key_of(m));
      if (m.id % 2) {
        sends.push_back(c.isend(std::move(buf), m.dst, m.tag()));
      } else {
        out.push_back(std::move(buf));
        sends.push_back(c.isend(out.back(), m.dst, m.tag()));
      }
    }
    // Each received message checked as it completes.
    for (std::size_t left = recvs.size(); left > 0; --left) {
      ipc::Status st;
      std::size_t i = ipc::wait_any(recvs, &st);
      const Msg& m = *expect[i];
      IT_CHECK(me, st.source == m.src && st.tag == m.tag(), "message %u: from %d tag %d, expected from %d tag %d", m.id,
               st.source, st.tag.value, m.src, m.tag().value);
      IT_CHECK(me, in[i].size() == m.size, "message %u from %d: %zu bytes, expected %zu", m.id, m.src, in[i].size(),
               m.size);
      std::size_t bad = first_wrong(in[i], key_of(m));
      IT_CHECK(me, bad == m.size, "message %u from %d (%zu bytes): byte %zu is wrong", m.id, m.src, m.size, bad);
      ++received;
      bytes += m.size;
    }
    ipc::wait_all(sends);
    if (round == rounds / 2) rss_half = rss_bytes();
  }
  long rss_end = rss_bytes();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Every message arrived once; memory stayed flat on every rank.
  std::uint64_t all_received = c.allreduce(received);
  IT_CHECK(me, all_received == static_cast<std::uint64_t>(total), "%llu messages received of %ld",
           static_cast<unsigned long long>(all_received), total);
  long growth = rss_end - rss_half;
  long most = c.allreduce(growth, ipc::op::max{});
  std::uint64_t all_bytes = c.allreduce(bytes);
  if (me == 0)
    std::printf("soak: %ld messages, %.1f MiB, %d ranks, %.1f s; VmRSS of rank 0 %.1f MiB half-way, %.1f MiB at the "
                "end; largest growth of a rank %.2f MiB\n",
                total, static_cast<double>(all_bytes) / (1 << 20), n, seconds, static_cast<double>(rss_half) / (1 << 20),
                static_cast<double>(rss_end) / (1 << 20), static_cast<double>(most) / (1 << 20));
  IT_CHECK(me, rss_half > 0 && rss_end > 0, "VmRSS not found in /proc/self/status");
  IT_CHECK(me, growth < kRssGrowthLimit,
           "resident memory grew by %.1f MiB over the second half (%.1f MiB half-way, %.1f MiB at the end; limit %ld "
           "MiB): a leak per message?",
           static_cast<double>(growth) / (1 << 20), static_cast<double>(rss_half) / (1 << 20),
           static_cast<double>(rss_end) / (1 << 20), kRssGrowthLimit >> 20);
  return 0;
}
