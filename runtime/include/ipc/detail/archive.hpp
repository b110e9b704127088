/// @file detail/archive.hpp
/// Cereal's binary archives over byte buffers, without a string stream's copies.
#pragma once

#include <cereal/archives/binary.hpp>

#include <cstddef>
#include <cstring>
#include <memory>
#include <streambuf>
#include <vector>

namespace ipc::detail {

/// A streambuf that appends to a byte vector.
class VectorSink : public std::streambuf {
 public:
  explicit VectorSink(std::vector<std::byte>& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= 0) return 0;
    auto at = out_.size();
    out_.resize(at + static_cast<std::size_t>(n));
    std::memcpy(out_.data() + at, s, static_cast<std::size_t>(n));
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
  std::ostream os(&sink);
  {
    cereal::BinaryOutputArchive ar(os);
    ar(value);
  }
  return out;
}

template <class T>
void deserialize(const std::vector<std::byte>& bytes, T& value) {
  SpanSource src(bytes.data(), bytes.size());
  std::istream is(&src);
  cereal::BinaryInputArchive ar(is);
  ar(value);
}

}  // namespace ipc::detail
