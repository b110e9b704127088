#include "base/names.hpp"

namespace ipc::base {
namespace {

constexpr std::string_view kPrefix = "ipc-";

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string segment_name(std::string_view job, int rank) {
  return "/" + std::string(kPrefix) + std::string(job) + "-" + std::to_string(rank);
}

std::string group_segment_name(std::string_view job) { return "/" + std::string(kPrefix) + std::string(job) + "-c"; }

std::string doorbell_name(std::string_view job, int rank) {
  return std::string(kPrefix) + std::string(job) + "-" + std::to_string(rank);
}

std::optional<std::string> job_of_segment(std::string_view name) {
  if (name.substr(0, kPrefix.size()) != kPrefix || name.size() < kPrefix.size() + kJobIdDigits + 2)
    return std::nullopt;
  std::string_view job = name.substr(kPrefix.size(), kJobIdDigits);
  if (!is_hex(job) || name[kPrefix.size() + kJobIdDigits] != '-') return std::nullopt;
  return std::string(job);
}

}  // namespace ipc::base
