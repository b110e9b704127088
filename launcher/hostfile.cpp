#include "hostfile.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/errors.hpp"
#include "base/net.hpp"

namespace ipc::launcher {
namespace {

constexpr int kMaxSlots = 1 << 20;

// A whole positive number of at most kMaxSlots, else nullopt.
std::optional<int> count_of(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > kMaxSlots) return std::nullopt;
  return static_cast<int>(v);
}

// Adds `h` to `hosts`, merging it into an earlier entry of the same name: the counts
// add up, to at most kMaxSlots, and the sums must still have max_slots >= slots.
// @throws UsageError starting with `where`.
void merge(std::vector<Host>& hosts, Host h, const std::string& where) {
  auto add = [&](std::optional<int>& into, std::optional<int> more, const char* key) {
    if (!into && !more) return;
    long sum = long{into.value_or(0)} + more.value_or(0);
    if (sum > kMaxSlots)
      throw UsageError(where + "'" + h.name + "': its " + key + " add up to more than " + std::to_string(kMaxSlots));
    into = static_cast<int>(sum);
  };
  for (auto& e : hosts) {
    if (e.name != h.name) continue;
    add(e.slots, h.slots, "slots");
    add(e.max_slots, h.max_slots, "max_slots");
    if (e.slots && e.max_slots && *e.max_slots < *e.slots)
      throw UsageError(where + "'" + h.name + "': its max_slots add up to " + std::to_string(*e.max_slots) +
                       ", less than its slots, " + std::to_string(*e.slots));
    return;
  }
  hosts.push_back(std::move(h));
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (name.front() == '[') {  // an IPv6 address
    if (name.size() < 3 || name.back() != ']') return false;
    for (char c : name.substr(1, name.size() - 2))
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
    return true;
  }
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return name.front() != '-' && name.front() != '.';
}

bool names_this_host(std::string_view name, std::string_view this_host) {
  if (name == "localhost" || name == this_host) return true;
  in_addr a{};
  std::string text(name);
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  std::uint32_t v = ntohl(a.s_addr);
  if ((v >> 24) == 127) return true;
  for (auto& mine : net::ipv4_addresses())
    if (mine.value == v) return true;
  return false;
}

std::vector<Host> parse_hostfile(std::string_view text, const std::string& file) {
  std::vector<Host> hosts;
  std::size_t number = 0, pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto w = words(line);
    if (w.empty()) continue;
    auto where = file + ":" + std::to_string(number) + ": ";
    Host h;
    h.name = std::string(w[0]);
    if (!valid_host_name(h.name)) throw UsageError(where + "'" + h.name + "' is not a host name or address");
    for (std::size_t i = 1; i < w.size(); ++i) {
      auto eq = w[i].find('=');
      std::string_view key = w[i].substr(0, eq), value = eq == std::string_view::npos ? "" : w[i].substr(eq + 1);
      std::optional<int>* into = key == "slots" ? &h.slots : key == "max_slots" || key == "max-slots" ? &h.max_slots : nullptr;
      if (!into)
        throw UsageError(where + "unknown attribute '" + std::string(w[i]) + "' (a line is: host slots=N max_slots=M)");
      if (into->has_value()) throw UsageError(where + "'" + std::string(key) + "' given twice");
      auto n = count_of(value);
      if (!n)
        throw UsageError(where + std::string(key) + "='" + std::string(value) + "' is not a whole number from 1 to " +
                         std::to_string(kMaxSlots));
      *into = *n;
    }
    if (h.slots && h.max_slots && *h.max_slots < *h.slots)
      throw UsageError(where + "max_slots=" + std::to_string(*h.max_slots) + " is less than slots=" +
                       std::to_string(*h.slots));
    merge(hosts, std::move(h), where);
    if (end == text.size()) break;
  }
  if (hosts.empty()) throw UsageError(file + ": names no host");
  return hosts;
}

std::vector<Host> read_hostfile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("hostfile " + path + ": cannot be read (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_hostfile(text.str(), path);
}

std::vector<Host> parse_host_list(std::string_view list, std::string_view option) {
  std::vector<Host> hosts;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    pos = comma + 1;
    auto bad = [&](const std::string& why) {
      return UsageError(std::string(option) + ": '" + std::string(item) + "' " + why + " (a list is host[:N],...)");
    };
    if (item.empty()) throw bad("is empty");
    Host h;
    // name:N, except inside an IPv6 address in brackets
    std::size_t colon = item.back() == ']' ? std::string_view::npos : item.rfind(':');
    h.name = std::string(item.substr(0, colon));
    if (!valid_host_name(h.name)) throw bad("is not a host name or address");
    if (colon != std::string_view::npos) {
      auto n = count_of(item.substr(colon + 1));
      if (!n) throw bad("has a slot count that is not a whole number from 1 to " + std::to_string(kMaxSlots));
      h.slots = *n;
    } else {
      h.slots = 1;
    }
    merge(hosts, std::move(h), std::string(option) + ": ");
    if (comma == list.size()) break;
  }
  return hosts;
}

}  // namespace ipc::launcher
