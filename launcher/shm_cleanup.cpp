#include "shm_cleanup.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/names.hpp"
#include "output.hpp"
#include "wire/secret.hpp"

namespace ipc::launcher {
namespace {

constexpr const char* kDir = "/dev/shm";
constexpr std::size_t kPidDigits = 8;

// The names in /dev/shm that belong to ipc jobs, with their job ids.
std::vector<std::pair<std::string, std::string>> segments() {
  std::vector<std::pair<std::string, std::string>> out;
  DIR* d = ::opendir(kDir);
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (auto job = base::job_of_segment(name)) out.emplace_back(name, *job);
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::string make_job_id() {
  char pid[kPidDigits + 1];
  std::snprintf(pid, sizeof pid, "%08x", static_cast<unsigned>(::getpid()));
  static_assert(kPidDigits + 16 == base::kJobIdDigits);
  std::byte random[8];
  wire::random_bytes(random, sizeof random);
  return pid + wire::to_hex(random, sizeof random);
}

int remove_job_segments(const std::string& job) {
  int n = 0;
  for (auto& [name, id] : segments())
    if (id == job && ::shm_unlink(("/" + name).c_str()) == 0) ++n;
  return n;
}

int remove_stale_segments(bool verbose) {
  int n = 0;
  for (auto& [name, job] : segments()) {
    struct stat st {};
    std::string path = std::string(kDir) + "/" + name;
    if (::stat(path.c_str(), &st) != 0 || st.st_uid != ::geteuid()) continue;
    auto pid = static_cast<pid_t>(std::strtoul(job.substr(0, kPidDigits).c_str(), nullptr, 16));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its ipcrun still runs
    if (::shm_unlink(("/" + name).c_str()) == 0) {
      ++n;
      if (verbose) say("removed stale " + path);
    }
  }
  return n;
}

}  // namespace ipc::launcher
