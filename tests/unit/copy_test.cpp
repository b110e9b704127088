// base::copy_bytes and base::move_bytes: the same bytes as memcpy / memmove at every
// size and every offset between destination and source (the aliased way included),
// and not a byte outside the destination touched.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/copy.hpp"
#include "base/prefetch.hpp"

namespace {

std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return v;
}

TEST(Copy, AliasedOffsetsAreTheOnesThatSlowMemcpy) {
  alignas(4096) static unsigned char page[8192];
  EXPECT_FALSE(ipc::base::aliased(page, page));
  EXPECT_TRUE(ipc::base::aliased(page + 1, page));
  EXPECT_TRUE(ipc::base::aliased(page + 63, page));
  EXPECT_FALSE(ipc::base::aliased(page + 64, page));
  EXPECT_TRUE(ipc::base::aliased(page + 4096 + 8, page));
  EXPECT_FALSE(ipc::base::aliased(page, page + 8));  // behind the source: memcpy keeps its speed
}

TEST(Copy, EveryOffsetAndSizeCopiesExactly) {
  const std::size_t sizes[] = {0, 1, 100, 2047, 2048, 2049, 4096, 4100, 65536 + 77};
  std::vector<unsigned char> src_store(70000 + 8192), dst_store(70000 + 8192 + 4096);
  for (std::size_t n : sizes)
    for (std::size_t so : {0u, 4u, 16u, 1000u})
      for (std::size_t d = 0; d < 4096 + 70; d += (d < 80 ? 1 : 509)) {
        auto want = pattern(n, static_cast<unsigned>(d + so));
        unsigned char* src = src_store.data() + so;
        std::memcpy(src, want.data(), n);
        std::memset(dst_store.data(), 0xAB, dst_store.size());
        // dst - src = d (mod 4 KiB), from the two buffers' own addresses: every case,
        // the aliased ones too.
        std::size_t at = (d + reinterpret_cast<std::uintptr_t>(src) - reinterpret_cast<std::uintptr_t>(dst_store.data())) & 4095;
        unsigned char* dst = dst_store.data() + at;
        ASSERT_EQ(d % 4096, (reinterpret_cast<std::uintptr_t>(dst) - reinterpret_cast<std::uintptr_t>(src)) & 4095);
        ASSERT_LE(at + n + 64, dst_store.size());
        ipc::base::copy_bytes(dst, src, n);
        ASSERT_EQ(0, std::memcmp(dst, want.data(), n)) << "size " << n << " offset " << d;
        for (std::size_t i = 0; i < at; ++i) ASSERT_EQ(0xAB, dst_store[i]) << "before, size " << n;
        for (std::size_t i = at + n; i < dst_store.size(); ++i) ASSERT_EQ(0xAB, dst_store[i]) << "after, size " << n;
      }
}

TEST(Copy, MoveBytesHandlesOverlapLikeMemmove) {
  for (std::size_t n : {3000u, 10000u})
    for (std::ptrdiff_t shift : {-4096 - 8, -8, -1, 1, 8, 63, 64, 4096 + 8}) {
      std::vector<unsigned char> buf(n + 2 * 4200), ref;
      auto p = pattern(buf.size(), static_cast<unsigned>(n));
      std::memcpy(buf.data(), p.data(), buf.size());
      ref = buf;
      unsigned char* src = buf.data() + 4200;
      std::memmove(ref.data() + 4200 + shift, ref.data() + 4200, n);
      ipc::base::move_bytes(src + shift, src, n);
      ASSERT_EQ(ref, buf) << "size " << n << " shift " << shift;
    }
}

}  // namespace

// The write prefetch (base/prefetch.hpp) is used where the CPU has it: what CPUID says
// here agrees with the kernel's list of the CPU's features (x86: "3dnowprefetch", the
// kernel's name for PREFETCHW). And it is a hint: asking for a line changes no byte.
TEST(Prefetch, ForWritingWhereTheCpuHasItAndChangesNothing) {
#if defined(__x86_64__) || defined(__i386__)
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  bool listed = false, found = false;
  while (std::getline(in, line) && !found)
    if (line.rfind("flags", 0) == 0) {
      found = true;
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string w; words >> w;) listed |= w == "3dnowprefetch";
    }
  ASSERT_TRUE(found) << "no flags line in /proc/cpuinfo";
  EXPECT_EQ(ipc::base::write_prefetch_available(), listed);
#endif
  std::vector<unsigned char> v = pattern(4096, 3), before = v;
  if (ipc::base::write_prefetch_available())
    for (std::size_t off = 0; off < v.size(); off += 64) ipc::base::prefetch_for_write(v.data() + off);
  EXPECT_EQ(v, before);
}
