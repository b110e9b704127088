#include "base/load.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

namespace ipc::base {

int runnable_in_loadavg(std::string_view line) {
  // Three load averages, then "runnable/total".
  std::size_t at = 0;
  for (int field = 0; field < 3; ++field) {
    at = line.find(' ', at);
    if (at == std::string_view::npos) return -1;
    at = line.find_first_not_of(' ', at);
    if (at == std::string_view::npos) return -1;
  }
  int n = -1;
  auto [end, ec] = std::from_chars(line.data() + at, line.data() + line.size(), n);
  if (ec != std::errc() || end == line.data() + line.size() || *end != '/' || n < 0) return -1;
  return n;
}

bool cpus_to_spare() {
  static const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);  // kept: one read per look
  static const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (fd < 0 || cpus <= 0) return false;
  char buf[128];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return false;
  int runnable = runnable_in_loadavg(std::string_view(buf, static_cast<std::size_t>(n)));
  return runnable >= 0 && runnable <= cpus;
}

}  // namespace ipc::base
