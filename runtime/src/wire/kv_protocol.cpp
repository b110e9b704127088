#include "wire/kv_protocol.hpp"

#include "wire/bytes.hpp"

#include <cstring>

namespace ipc::wire {
namespace {

void put_u32(std::vector<std::byte>& out, std::uint32_t v) { put_int(out, v); }
std::uint32_t get_u32(const std::byte* p) { return get_int<std::uint32_t>(p); }

bool known(std::uint8_t op) {
  switch (static_cast<KvOp>(op)) {
    case KvOp::put: case KvOp::get: case KvOp::fence: case KvOp::report:
    case KvOp::value: case KvOp::fenced: case KvOp::error:
      return true;
  }
  return false;
}

}  // namespace

void encode(const KvMessage& m, std::vector<std::byte>& out) {
  encode_frame(static_cast<std::uint8_t>(m.op), m.parts, out);
}

void encode_frame(std::uint8_t op, const std::vector<std::string>& parts, std::vector<std::byte>& out) {
  std::size_t body = 1 + 4;
  for (auto& p : parts) body += 4 + p.size();
  put_u32(out, static_cast<std::uint32_t>(body));
  out.push_back(static_cast<std::byte>(op));
  put_u32(out, static_cast<std::uint32_t>(parts.size()));
  for (auto& p : parts) {
    put_u32(out, static_cast<std::uint32_t>(p.size()));
    auto n = out.size();
    out.resize(n + p.size());
    std::memcpy(out.data() + n, p.data(), p.size());
  }
}

std::vector<std::byte> encode(const KvMessage& m) {
  std::vector<std::byte> out;
  encode(m, out);
  return out;
}

KvDecode decode(std::span<const std::byte> in, const KvLimits& limits, KvMessage& out,
                std::size_t& consumed, std::string* why) {
  std::uint8_t op = 0;
  std::vector<std::string> parts;
  auto r = decode_frame(in, limits, op, parts, consumed, why);
  if (r != KvDecode::ok) return r;
  if (!known(op)) {
    if (why) *why = "unknown operation";
    return KvDecode::malformed;
  }
  out.op = static_cast<KvOp>(op);
  out.parts = std::move(parts);
  return KvDecode::ok;
}

KvDecode decode_frame(std::span<const std::byte> in, const KvLimits& limits, std::uint8_t& op_out,
                      std::vector<std::string>& parts_out, std::size_t& consumed, std::string* why) {
  auto fail = [&](const char* text) {
    if (why) *why = text;
    return KvDecode::malformed;
  };
  if (in.size() < 4) return KvDecode::need_more;
  std::uint32_t body = get_u32(in.data());
  if (body < 5) return fail("message body shorter than its header");
  if (body > limits.max_body) return fail("message body longer than the limit");
  if (in.size() < 4 + std::size_t{body}) return KvDecode::need_more;
  const std::byte* p = in.data() + 4;
  const std::byte* end = p + body;
  auto op = static_cast<std::uint8_t>(*p++);
  std::uint32_t count = get_u32(p);
  p += 4;
  if (count > limits.max_parts) return fail("too many parts");
  if (count > static_cast<std::size_t>(end - p) / 4) return fail("part count exceeds the body");
  std::vector<std::string> parts;
  parts.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (end - p < 4) return fail("part length runs past the body");
    std::uint32_t len = get_u32(p);
    p += 4;
    if (len > static_cast<std::size_t>(end - p)) return fail("part runs past the body");
    parts.emplace_back(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  if (p != end) return fail("trailing bytes after the last part");
  op_out = op;
  parts_out = std::move(parts);
  consumed = 4 + std::size_t{body};
  return KvDecode::ok;
}

}  // namespace ipc::wire
