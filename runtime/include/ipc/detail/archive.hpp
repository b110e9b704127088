/// @file detail/archive.hpp
/// Cereal's binary archives over byte buffers, without a string stream's copies.
#pragma once

#include <cereal/archives/binary.hpp>

#include <cstddef>
#include <cstring>
#include <istream>
#include <memory>
#include <ostream>
#include <streambuf>
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
