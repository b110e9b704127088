// The bootstrap's key-value protocol between ranks (clients) and ipcrun (server),
// spoken after the handshake on the bootstrap connection.
//
// A message: u32 body length | u8 op | u32 part count | (u32 length | bytes) * count.
// Requests:  put(key, value), get(key), fence(), report(line)
// Replies:   value(value) to get, when the key exists (the server holds the get until
//            then); fenced(k1, v1, k2, v2, ...) to fence, once every rank of the job
//            has called it, carrying every pair put so far; error(text).
// Every length is checked against the limits before anything is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ipc::wire {

enum class KvOp : std::uint8_t { put = 1, get = 2, fence = 3, report = 4, value = 10, fenced = 11, error = 12 };

struct KvMessage {
  KvOp op{};
  std::vector<std::string> parts;
};

struct KvLimits {
  std::uint32_t max_body = 64u << 20;   // 64 MiB
  std::uint32_t max_parts = 1u << 20;
};

/// Appends the encoding of `m` to `out`.
void encode(const KvMessage& m, std::vector<std::byte>& out);
std::vector<std::byte> encode(const KvMessage& m);

enum class KvDecode { ok, need_more, malformed };

/// Tries to decode one message from the front of `in`. On ok, `consumed` is its
/// length. need_more: not all bytes are there yet. malformed: a length or count
/// breaks the limits or the structure; the stream is unusable.
KvDecode decode(std::span<const std::byte> in, const KvLimits& limits, KvMessage& out,
                std::size_t& consumed, std::string* why = nullptr);

/// The same framing with any operation byte, for the protocols built on it (ipcrun's
/// link to its node agents): the operation is not checked.
void encode_frame(std::uint8_t op, const std::vector<std::string>& parts, std::vector<std::byte>& out);
KvDecode decode_frame(std::span<const std::byte> in, const KvLimits& limits, std::uint8_t& op,
                      std::vector<std::string>& parts, std::size_t& consumed, std::string* why = nullptr);

}  // namespace ipc::wire
