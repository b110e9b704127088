#include "dump.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "base/params.hpp"

namespace ipc::launcher {
namespace {

bool stopped(const std::string& s) { return s == "T" || s == "t"; }
bool gone(const std::string& s) { return s == "Z" || s == "X" || s == "ended" || s == "not started"; }

// "waits in ..." said of several ranks.
std::string plural(const std::string& text, bool many) {
  if (!many) return text;
  for (auto [one, more] : {std::pair{"waits ", "wait "}, {"runs ", "run "}, {"has ", "have "}, {"is ", "are "},
                           {"did ", "did "}})
    if (text.rfind(one, 0) == 0) return more + text.substr(std::strlen(one));
  return text;
}

std::string ranks_text(const std::vector<int>& rs) {
  return (rs.size() == 1 ? "rank " : "ranks ") + rank_ranges(rs);
}

}  // namespace

std::string rank_ranges(const std::vector<int>& ranks) {
  std::string out;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(ranks[i]);
    if (j > i) out += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return out;
}

void Dump::state(int rank, std::string s) {
  if (rank >= 0 && static_cast<std::size_t>(rank) < states_.size()) states_[static_cast<std::size_t>(rank)] = std::move(s);
}

void Dump::line(int rank, std::string text) {
  if (rank < 0 || static_cast<std::size_t>(rank) >= lines_.size()) return;
  auto r = static_cast<std::size_t>(rank);
  if (ended_[r]) return;
  if (text == "end") {
    ended_[r] = true;
    return;
  }
  if (lines_[r].size() < 64) lines_[r].push_back(std::move(text));
}

bool Dump::can_answer(std::size_t r) const {
  const auto& s = states_[r];
  return ranks_[r].reachable && ranks_[r].joined && !s.empty() && !stopped(s) && !gone(s);
}

bool Dump::complete() const {
  for (std::size_t r = 0; r < ranks_.size(); ++r) {
    if (ranks_[r].reachable && states_[r].empty()) return false;
    if (can_answer(r) && !ended_[r]) return false;
  }
  return true;
}

std::string Dump::doing(std::size_t r) const {
  const auto& s = states_[r];
  if (!ranks_[r].reachable) return "is on a host that is lost";
  if (s.empty()) return "did not say (its host's agent gave no state)";
  if (stopped(s)) return "is stopped (SIGSTOP, or a debugger)";
  if (s == "not started") return "has not been started";
  if (gone(s)) return "has ended";
  for (auto& l : lines_[r])
    if (l.rfind("summary: ", 0) == 0) return l.substr(9);
  if (!ranks_[r].joined) return "has not joined the job (no ipc::Runtime yet)";
  return "did not answer (busy outside the library with IPC_PROGRESS_THREAD=0, or stuck)";
}

std::string Dump::render() const {
  std::ostringstream o;
  const std::size_t n = ranks_.size();
  for (std::size_t r = 0; r < n; ++r) {
    o << "rank " << r << " on " << ranks_[r].node;
    if (ranks_[r].pid > 0) o << " (pid " << ranks_[r].pid << (states_[r].empty() ? "" : ", state " + states_[r]) << ")";
    o << ":";
    bool reported = false;
    for (auto& l : lines_[r])
      if (l.rfind("summary: ", 0) != 0) {
        o << "\n  " << l;
        reported = true;
      }
    if (!reported) o << " " << doing(r);
    o << "\n";
  }
  // Summary: ranks grouped by what they do, in order of their first rank.
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  std::map<std::string, std::size_t> index;
  for (std::size_t r = 0; r < n; ++r) {
    auto d = doing(r);
    auto [it, fresh] = index.emplace(d, groups.size());
    if (fresh) groups.push_back({d, {}});
    groups[it->second].second.push_back(static_cast<int>(r));
  }
  o << "summary: ";
  for (std::size_t g = 0; g < groups.size(); ++g)
    o << (g ? "; " : "") << ranks_text(groups[g].second) << " " << plural(groups[g].first, groups[g].second.size() > 1);
  o << "\n";

  // The likely cause, from the first rule that applies.
  std::vector<int> stopped_ranks, unjoined, in_coll, not_in_coll;
  std::map<std::string, std::vector<int>> colls;  // "allreduce #3 on world" -> ranks
  for (std::size_t r = 0; r < n; ++r) {
    auto d = doing(r);
    if (stopped(states_[r])) stopped_ranks.push_back(static_cast<int>(r));
    if (!ranks_[r].joined && !gone(states_[r])) unjoined.push_back(static_cast<int>(r));
    if (d.rfind("waits in ", 0) == 0 && d.find(" #") != std::string::npos) {
      colls[d.substr(9)].push_back(static_cast<int>(r));
      in_coll.push_back(static_cast<int>(r));
    } else {
      not_in_coll.push_back(static_cast<int>(r));
    }
  }
  std::string cause;
  if (!stopped_ranks.empty()) {
    cause = ranks_text(stopped_ranks) + " " + plural("is stopped", stopped_ranks.size() > 1) +
            " (SIGSTOP, or a debugger) while the others wait: continue it with kill -CONT";
  } else if (colls.size() > 1) {
    cause = "mismatched collectives: ";
    bool first = true;
    for (auto& [c, rs] : colls) {
      cause += (first ? "" : ", ") + ranks_text(rs) + " in " + c;
      first = false;
    }
  } else if (colls.size() == 1 && !not_in_coll.empty()) {
    cause = ranks_text(in_coll) + " " + plural("waits in " + colls.begin()->first, in_coll.size() > 1) + ", which " +
            ranks_text(not_in_coll) + " never entered";
    std::map<std::string, std::vector<int>> others;
    for (int r : not_in_coll) others[doing(static_cast<std::size_t>(r))].push_back(r);
    for (auto& [d, rs] : others) cause += "; " + ranks_text(rs) + " " + plural(d, rs.size() > 1);
  } else if (!unjoined.empty()) {
    cause = ranks_text(unjoined) + " " + plural("has not joined the job", unjoined.size() > 1) +
            " (no ipc::Runtime created yet)";
  } else {
    // A receive from a named rank that will not send.
    const std::string from = "waits in receive from rank ";
    for (std::size_t r = 0; r < n && cause.empty(); ++r) {
      auto d = doing(r);
      if (d.rfind(from, 0) != 0) continue;
      int p = std::atoi(d.c_str() + from.size());
      if (p < 0 || static_cast<std::size_t>(p) >= n || static_cast<std::size_t>(p) == r) continue;
      auto dp = doing(static_cast<std::size_t>(p));
      if (dp.rfind(from + std::to_string(r) + " ", 0) == 0)
        cause = "ranks " + std::to_string(std::min<std::size_t>(r, p)) + " and " +
                std::to_string(std::max<std::size_t>(r, p)) + " each wait to receive from the other";
      else
        cause = "rank " + std::to_string(r) + " waits for a message from rank " + std::to_string(p) + ", which " + dp;
    }
  }
  if (!cause.empty()) o << "likely cause: " << cause << "\n";
  return o.str();
}

std::string dump_path(long pid) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/ipcrun-" + std::to_string(pid) + ".dump";
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// The running jobs of this user: ipcrun processes that are neither agents nor --dump.
std::vector<std::pair<long, std::string>> running_jobs() {
  std::vector<std::pair<long, std::string>> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0 || pid == ::getpid()) continue;
    struct stat st {};
    std::string dir = std::string("/proc/") + e->d_name;
    if (::stat(dir.c_str(), &st) != 0 || st.st_uid != ::getuid()) continue;
    std::string cmd = read_text(dir + "/cmdline");
    std::vector<std::string> args;
    for (std::size_t at = 0; at < cmd.size();) {
      auto z = cmd.find('\0', at);
      if (z == std::string::npos) z = cmd.size();
      args.push_back(cmd.substr(at, z - at));
      at = z + 1;
    }
    if (args.empty()) continue;
    auto base = args[0].substr(args[0].rfind('/') + 1);
    if (base != "ipcrun") continue;
    bool other = false;
    for (auto& a : args) other |= a == "--agent" || a == "--dump";
    if (other) continue;
    std::string line;
    for (auto& a : args) line += (line.empty() ? "" : " ") + a;
    out.push_back({pid, line});
  }
  ::closedir(d);
  return out;
}

}  // namespace

int request_dump(const std::string& pid_text) {
  auto jobs = running_jobs();
  long pid = -1;
  if (!pid_text.empty()) {
    char* end = nullptr;
    pid = std::strtol(pid_text.c_str(), &end, 10);
    bool known = false;
    for (auto& j : jobs) known |= j.first == pid;
    if (*end || pid <= 0 || !known) {
      std::cerr << "ipcrun: --dump " << pid_text << ": no job of yours runs under that ipcrun pid" << std::endl;
      return 1;
    }
  } else if (jobs.empty()) {
    std::cerr << "ipcrun: --dump: no job of yours is running" << std::endl;
    return 1;
  } else if (jobs.size() > 1) {
    std::cerr << "ipcrun: --dump: " << jobs.size() << " jobs are running; name one with ipcrun --dump PID:\n";
    for (auto& j : jobs) std::cerr << "  " << j.first << "  " << j.second << "\n";
    std::cerr.flush();
    return 2;
  } else {
    pid = jobs.front().first;
  }
  auto path = dump_path(pid);
  struct stat before {};
  bool had = ::stat(path.c_str(), &before) == 0;
  if (::kill(static_cast<pid_t>(pid), SIGQUIT) != 0) {
    std::cerr << "ipcrun: --dump: cannot signal ipcrun " << pid << ": " << std::strerror(errno) << std::endl;
    return 1;
  }
  // The job's ipcrun answers within IPC_DUMP_WAIT (and its agents' round trips).
  double wait = base::param_seconds("IPC_DUMP_WAIT") + 5;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
  for (;;) {
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 &&
        (!had || now.st_ino != before.st_ino || now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
         now.st_mtim.tv_nsec != before.st_mtim.tv_nsec)) {
      std::cout << read_text(path) << std::flush;
      return 0;
    }
    if (std::chrono::steady_clock::now() > deadline || ::kill(static_cast<pid_t>(pid), 0) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "ipcrun: --dump: ipcrun " << pid << " wrote no dump within " << wait << " s (it prints one on its own "
            << "stderr when it can)" << std::endl;
  return 1;
}

}  // namespace ipc::launcher
