// Fixed-width integers in byte buffers, in the host's order (every peer of a job runs
// the same build on the same kind of machine): the key-value protocol's lengths and
// the farm's task indices and journal records.
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

namespace ipc::wire {

/// Appends `v` to `out`.
template <class T>
  requires std::is_integral_v<T>
void put_int(std::vector<std::byte>& out, T v) {
  auto n = out.size();
  out.resize(n + sizeof v);
  std::memcpy(out.data() + n, &v, sizeof v);
}

/// Writes `v` at `p` (any alignment): a length filled in after what it counts.
template <class T>
  requires std::is_integral_v<T>
void set_int(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

/// Reads a T at `p` (any alignment).
template <class T>
  requires std::is_integral_v<T>
T get_int(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace ipc::wire
