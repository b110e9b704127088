// ipcrun's command line (launcher/options.hpp): the input, split at NUL bytes, is
// argv after "ipcrun". parse_options must return, either options that hold together
// or an exit status (0 after --help, 2 after a usage error); an exception escaping
// it, or a crash, is a bug.
//
// parse_options reports on stderr and prints --help on stdout. Under the deterministic
// driver both go to /dev/null around each call; libFuzzer runs take -close_fd_mask=3
// (run_libfuzzer.sh passes it), which keeps libFuzzer's and the sanitizers' reports.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPC_FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(IPC_FUZZ_ASAN)
#define IPC_FUZZ_ASAN 1
#endif
#ifdef IPC_FUZZ_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#include "fuzz.hpp"
#include "options.hpp"

using namespace ipc::launcher;

namespace {

constexpr std::size_t kMaxArgs = 64;

// Standard output and error to /dev/null while alive (not under libFuzzer).
class Quiet {
 public:
  Quiet() {
#ifndef IPC_LIBFUZZER
    static const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    static const int saved_out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
    static const int saved_err = [] {
      int fd = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
#ifdef IPC_FUZZ_ASAN
      __sanitizer_set_report_fd(reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));  // reports stay visible
#endif
      return fd;
    }();
    out_ = saved_out;
    err_ = saved_err;
    std::fflush(nullptr);
    ::dup2(null, 1);
    ::dup2(null, 2);
#endif
  }
  ~Quiet() {
#ifndef IPC_LIBFUZZER
    std::cout.flush();
    std::fflush(nullptr);
    ::dup2(out_, 1);
    ::dup2(err_, 2);
#endif
  }
  Quiet(const Quiet&) = delete;
  Quiet& operator=(const Quiet&) = delete;

 private:
  int out_ = -1, err_ = -1;
};

bool positive_seconds(const std::optional<double>& s) { return !s || (*s > 0 && std::isfinite(*s)); }

// What a caller of parse_options may count on when it returns no status.
void check(const Options& o) {
  if (o.np < 1 || o.np > (1 << 20)) __builtin_trap();
  if (o.map_by != "slot" && o.map_by != "node") __builtin_trap();
  if (o.bind_to != "core" && o.bind_to != "none" && o.bind_to != "auto") __builtin_trap();
  if (!positive_seconds(o.timeout) || !positive_seconds(o.launch_timeout)) __builtin_trap();
  if (o.hostfile && o.host) __builtin_trap();
  for (const auto& x : o.exports)
    if (x.empty() || x[0] == '=') __builtin_trap();
  if (o.command.empty() && !o.version && !o.list_params && !o.cleanup) __builtin_trap();
  if (o.transports) check_transports(*o.transports, "--transports");  // accepted: must not throw
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"ipcrun"};
  std::string arg;
  for (std::size_t i = 0; i < size && args.size() < kMaxArgs; ++i) {
    if (data[i] == 0) {
      args.push_back(std::move(arg));
      arg.clear();
    } else {
      arg.push_back(static_cast<char>(data[i]));
    }
  }
  if (args.size() < kMaxArgs && size > 0 && data[size - 1] != 0) args.push_back(arg);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  Options o;
  std::optional<int> status;
  try {
    Quiet quiet;
    status = parse_options(static_cast<int>(args.size()), argv.data(), o);
  } catch (...) {
    __builtin_trap();  // parse_options reports every usage error itself
  }
  if (status && *status != 0 && *status != 2) __builtin_trap();
  if (!status) check(o);
  return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
  const std::vector<std::vector<std::string>> lines = {
      {"-n", "4", "prog"},
      {"--np", "8", "--tag-output", "-x", "A=1", "-x", "PATH", "--timeout", "2.5", "prog", "-n", "5"},
      {"--hostfile", "hosts", "--map-by", "node", "--oversubscribe", "--display-map", "prog"},
      {"--host", "a:2,b", "--bind-to", "core", "--keep-going", "--", "-prog", "arg"},
      {"--transports", "tcp,shm", "--report-transports", "--port-range", "5000-6000", "prog"},
      {"--iface", "127.0.0.0/8", "--launch-agent", "ssh -x", "--launch-timeout", "3", "prog"},
      {"--version"},
      {"--list-params"},
      {"--cleanup"},
      {"--help"},
      {"-n", "0", "prog"},
      {"--timeout=nan", "prog"},
  };
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& line : lines) {
    std::vector<std::uint8_t> in;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i) in.push_back(0);
      in.insert(in.end(), line[i].begin(), line[i].end());
    }
    out.push_back(in);
  }
  return out;
}
