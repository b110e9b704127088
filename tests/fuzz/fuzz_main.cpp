// A deterministic stand-in for libFuzzer: mutations (bit flips, byte changes,
// truncations, extensions, splices of seeds, random bytes) of each target's seeds.
//   <target> [inputs] [corpus directory]
// The files of the corpus directory (tests/fuzz/corpus/<target>: seeds, and inputs
// that once failed) run first, in name order, and join the seeds.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "fuzz.hpp"

namespace {

std::vector<std::vector<std::uint8_t>> read_corpus(const char* dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = argc > 1 ? std::atol(argv[1]) : 10000;
  auto seeds = fuzz_seeds();
  if (argc > 2) {
    auto corpus = read_corpus(argv[2]);
    std::printf("%zu corpus files\n", corpus.size());
    seeds.insert(seeds.end(), corpus.begin(), corpus.end());
  }
  std::mt19937_64 rng(12345);
  for (auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  for (long i = 0; i < runs; ++i) {
    std::vector<std::uint8_t> in = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 6) {
        case 0:
          if (!in.empty()) in[rng() % in.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          if (!in.empty()) in[rng() % in.size()] = static_cast<std::uint8_t>(rng());
          break;
        case 2:
          if (!in.empty()) in.resize(rng() % in.size());
          break;
        case 3:
          for (int k = static_cast<int>(rng() % 64); k > 0; --k) in.push_back(static_cast<std::uint8_t>(rng()));
          break;
        case 4: {
          auto& other = seeds[rng() % seeds.size()];
          in.insert(in.end(), other.begin(), other.end());
          break;
        }
        case 5:
          if (in.size() >= 4) {  // a length field set to an extreme
            std::size_t at = rng() % (in.size() - 3);
            std::uint32_t v = rng() % 2 ? 0xffffffffu : static_cast<std::uint32_t>(rng() % 256);
            for (int b = 0; b < 4; ++b) in[at + b] = static_cast<std::uint8_t>(v >> (8 * b));
          }
          break;
      }
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  std::printf("%ld inputs, no failure\n", runs + static_cast<long>(seeds.size()));
  return 0;
}
