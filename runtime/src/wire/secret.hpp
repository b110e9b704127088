// The per-job secret: 256 random bits made by ipcrun, handed to ranks and agents
// through the environment (IPC_JOB_SECRET, hex), never on a command line.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ipc::wire {

using Secret = std::array<std::byte, 32>;

/// A fresh secret from the system's CSPRNG. @throws std::runtime_error when none.
Secret make_secret();
/// `n` random bytes from the CSPRNG into `out`.
void random_bytes(std::byte* out, std::size_t n);
std::string to_hex(const std::byte* data, std::size_t n);
inline std::string to_hex(const Secret& s) { return to_hex(s.data(), s.size()); }
/// Parses 64 hex digits; nullopt on anything else.
std::optional<Secret> secret_from_hex(std::string_view hex);

}  // namespace ipc::wire
