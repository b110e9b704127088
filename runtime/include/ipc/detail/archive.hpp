/// @file detail/archive.hpp
/// Cereal's binary archives over byte buffers, without a string stream's copies.
#pragma once

#include <cereal/archives/binary.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <memory>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

namespace ipc::detail {

/// A stream of this thread's over `buf` while it lives: constructing a std::istream or
/// std::ostream looks up its locale's facets, which costs more than serializing a
/// small call (1,650 instructions of an RPC's 5,000 on the caller). Streams are kept
/// per thread and reused; one in use is never handed out again (a handler that calls
/// another procedure serializes while its caller's stream is open).
template <class Stream>
class PooledStream {
 public:
  explicit PooledStream(std::streambuf* buf) {
    auto& free = pool();
    if (free.empty()) {
      s_ = std::make_unique<Stream>(buf);
    } else {
      s_ = std::move(free.back());
      free.pop_back();
      s_->rdbuf(buf);  // and a clear state
    }
  }
  ~PooledStream() {
    s_->rdbuf(nullptr);
    pool().push_back(std::move(s_));
  }
  PooledStream(const PooledStream&) = delete;
  PooledStream& operator=(const PooledStream&) = delete;
  Stream& operator*() const { return *s_; }

 private:
  static std::vector<std::unique_ptr<Stream>>& pool() {
    thread_local std::vector<std::unique_ptr<Stream>> free;
    return free;
  }
  std::unique_ptr<Stream> s_;
};
using OutStream = PooledStream<std::ostream>;
using InStream = PooledStream<std::istream>;

/// A streambuf that appends to a byte vector.
class VectorSink : public std::streambuf {
 public:
  explicit VectorSink(std::vector<std::byte>& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= 0) return 0;
    auto* p = reinterpret_cast<const std::byte*>(s);
    out_.insert(out_.end(), p, p + n);  // no zero fill first, as resize() would
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_.push_back(static_cast<std::byte>(c));
    return c;
  }

 private:
  std::vector<std::byte>& out_;
};

/// A streambuf that reads a byte range.
class SpanSource : public std::streambuf {
 public:
  SpanSource(const std::byte* data, std::size_t size) {
    auto* p = const_cast<char*>(reinterpret_cast<const char*>(data));
    setg(p, p, p + size);
  }
};

// ---- the same bytes without an archive ----------------------------------------------
//
// The values most calls carry (numbers, std::string, std::vector of numbers) are
// written and read here directly, byte for byte as Cereal's binary archives do: a
// number as its bytes, a string or vector as its length (cereal::size_type) and then
// its elements. Building an archive over a stream costs more than the call's own
// bytes; the other side may use either (tests/unit/rpc_wire checks that they agree).

template <class T>
struct direct_wire : std::bool_constant<std::is_arithmetic_v<T>> {};
template <>
struct direct_wire<std::string> : std::true_type {};
template <class E>
struct direct_wire<std::vector<E>> : std::bool_constant<std::is_arithmetic_v<E> && !std::is_same_v<E, bool>> {};
template <class... T>
inline constexpr bool direct_wire_v = (direct_wire<std::remove_cvref_t<T>>::value && ...);

template <class T>
std::size_t direct_size(const T& v) {
  if constexpr (std::is_arithmetic_v<T>)
    return sizeof(T);
  else
    return sizeof(cereal::size_type) + v.size() * sizeof(typename T::value_type);
}

/// Writes `v` at `p`, which has room for direct_size(v) bytes, as Cereal's binary
/// archive would; returns the end.
template <class T>
std::byte* direct_write(std::byte* p, const T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    std::memcpy(p, &v, sizeof(T));
    return p + sizeof(T);
  } else {
    auto n = static_cast<cereal::size_type>(v.size());
    std::memcpy(p, &n, sizeof n);
    std::size_t bytes = v.size() * sizeof(typename T::value_type);
    if (bytes) std::memcpy(p + sizeof n, v.data(), bytes);
    return p + sizeof n + bytes;
  }
}

/// Appends `v` to `out`, as Cereal's binary archive would.
template <class T>
void direct_put(std::vector<std::byte>& out, const T& v) {
  std::size_t at = out.size();
  out.resize(at + direct_size(v));
  direct_write(out.data() + at, v);
}

/// Reads a `v` from the front of `in` (which moves past it). False when `in` is too
/// short for it.
template <class T>
bool direct_get(std::span<const std::byte>& in, T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    if (in.size() < sizeof(T)) return false;
    std::memcpy(&v, in.data(), sizeof(T));
    in = in.subspan(sizeof(T));
  } else {
    using E = typename T::value_type;
    cereal::size_type n = 0;
    if (in.size() < sizeof n) return false;
    std::memcpy(&n, in.data(), sizeof n);
    in = in.subspan(sizeof n);
    if (n > in.size() / sizeof(E)) return false;
    auto count = static_cast<std::size_t>(n);
    if (reinterpret_cast<std::uintptr_t>(in.data()) % alignof(E) == 0) {
      auto* first = reinterpret_cast<const E*>(in.data());
      v.assign(first, first + count);  // no zero fill first
    } else {
      v.resize(count);
      if (count) std::memcpy(v.data(), in.data(), count * sizeof(E));
    }
    in = in.subspan(static_cast<std::size_t>(n) * sizeof(E));
  }
  return true;
}

/// A kept room for this thread's next value of type T (a std::vector or std::string a
/// procedure reads its argument into): a procedure that returns what it was given, or
/// takes it by reference, reads each call's argument without an allocation.
template <class T>
T& spare() {
  thread_local T room;
  return room;
}
/// Reads into `v` with the kept room of its type, when there is one.
template <class T>
void take_spare(T& v) {
  if constexpr (!std::is_arithmetic_v<T>) {
    if (T& room = spare<T>(); room.capacity() > v.capacity()) v = std::move(room);
  }
}
/// Keeps `v`'s room for the next value of its type (up to 64 KiB: a rare large one is
/// not held on to).
template <class T>
void give_spare(T&& v) {
  using V = std::remove_cvref_t<T>;
  if constexpr (!std::is_arithmetic_v<V> && direct_wire<V>::value) {
    if (V& room = spare<V>(); v.capacity() > room.capacity() && v.capacity() * sizeof(typename V::value_type) <= (64u << 10)) {
      v.clear();
      room = std::move(v);
    }
  }
}

template <class T>
std::shared_ptr<std::vector<std::byte>> serialize(const T& value) {
  auto out = std::make_shared<std::vector<std::byte>>();
  VectorSink sink(*out);
  OutStream os(&sink);
  {
    cereal::BinaryOutputArchive ar(*os);
    ar(value);
  }
  return out;
}

template <class T>
void deserialize(const std::vector<std::byte>& bytes, T& value) {
  SpanSource src(bytes.data(), bytes.size());
  InStream is(&src);
  cereal::BinaryInputArchive ar(*is);
  ar(value);
}

}  // namespace ipc::detail
