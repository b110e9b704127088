/// @file value.hpp
/// Which values travel how. One concept decides:
///  - contiguous ranges of raw elements (std::vector, std::string, std::span,
///    std::array, C arrays) go as their bytes, without a copy on send;
///  - other trivially copyable, non-pointer types (arithmetic types, plain structs)
///    go as their bytes;
///  - everything else goes through Cereal's binary archive (maps, nested vectors,
///    user types with a `serialize` member or function).
/// A received message that does not fit the receive type, or does not deserialize as it,
/// makes the receive throw ipc::Truncation.
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ipc/detail/archive.hpp"
#include "ipc/detail/transfer.hpp"
#include "ipc/errors.hpp"

namespace ipc {

/// Trivially copyable, not a pointer: travels as its own bytes.
template <class T>
concept RawValue = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;

/// A contiguous, sized range of raw elements: travels as the bytes of its elements.
template <class R>
concept RawRange = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                   RawValue<std::remove_cv_t<std::ranges::range_value_t<R>>>;

/// Anything Cereal's binary archive can write and read.
template <class T>
concept SerializableValue = cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
                            cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

/// A value the runtime can send.
template <class T>
concept Sendable = RawRange<T> || RawValue<T> || SerializableValue<T>;

namespace detail {

template <class T>
struct is_resizable : std::false_type {};
template <class E, class A>
struct is_resizable<std::vector<E, A>> : std::bool_constant<RawValue<E> && !std::is_same_v<E, bool>> {};
template <class C, class Tr, class A>
struct is_resizable<std::basic_string<C, Tr, A>> : std::true_type {};

template <class T>
struct is_span : std::false_type {};
template <class E, std::size_t N>
struct is_span<std::span<E, N>> : std::true_type {};


[[noreturn]] void throw_deserialize_failed(const std::exception& e);

template <class T>
void deserialize_or_throw(const std::vector<std::byte>& bytes, T& value) {
  try {
    deserialize(bytes, value);
  } catch (const std::exception& e) {  // cereal::Exception, or a length_error on a huge count
    throw_deserialize_failed(e);
  }
}

/// Where the bytes of a raw value or range are, and how many.
struct RawBytes {
  const void* data;
  std::size_t size;
};
template <class T>
  requires RawRange<T> || RawValue<T>
RawBytes raw_bytes(const T& value) {
  if constexpr (RawRange<T>)
    return {std::ranges::data(value), std::ranges::size(value) * sizeof(std::ranges::range_value_t<T>)};
  else
    return {&value, sizeof(T)};
}

/// The bytes of `value`, pointing into it (the caller keeps it alive).
template <class T>
SendSource send_source(const T& value) {
  if constexpr (RawRange<T> || RawValue<T>) {
    auto [data, size] = raw_bytes(value);
    return {data, size, {}};
  } else {
    static_assert(SerializableValue<T>,
                  "ipc: this type can be neither sent as raw bytes nor serialized by Cereal; "
                  "give it a serialize() function");
    auto bytes = serialize(value);
    return {bytes->data(), bytes->size(), bytes};
  }
}

/// Moves `value` into the request, so that a temporary may be sent without a wait.
template <class T>
SendSource send_source_owned(T&& value) {
  using V = std::remove_cvref_t<T>;
  if constexpr (RawRange<V> && is_resizable<V>::value) {
    auto held = std::make_shared<V>(std::forward<T>(value));
    return {std::ranges::data(*held), std::ranges::size(*held) * sizeof(std::ranges::range_value_t<V>), held};
  } else if constexpr (RawValue<V> && !RawRange<V>) {
    auto held = std::make_shared<V>(std::forward<T>(value));
    return {held.get(), sizeof(V), held};
  } else {
    return send_source(value);  // a view or a serialized copy: nothing to hold
  }
}

/// A receive into `value` goes straight to its bytes (a span, or a raw value of
/// exactly its size): recv_target's `fixed` case, which a non-blocking receive posts
/// without building a RecvTarget first (post_recv_raw).
template <class T>
inline constexpr bool raw_target_v =
    !is_resizable<std::remove_cv_t<T>>::value && (is_span<std::remove_cv_t<T>>::value || RawValue<std::remove_cv_t<T>>);

/// Where a receive into `value` puts the payload.
template <class T>
RecvTarget recv_target(T& value) {
  using V = std::remove_cv_t<T>;
  static_assert(!std::is_const_v<T>, "ipc: cannot receive into a const object");
  if constexpr (is_resizable<V>::value) {
    using E = typename V::value_type;
    return {[&value](std::size_t bytes) -> void* {
              if (bytes % sizeof(E) != 0) throw_size_mismatch(bytes, sizeof(E), "a whole number of elements");
              value.resize(bytes / sizeof(E));
              return std::ranges::data(value);
            },
            {}};
  } else if constexpr (is_span<V>::value) {
    return {{}, {}, value.data(), value.size_bytes(), false};
  } else if constexpr (RawValue<V>) {
    return {{}, {}, &value, sizeof(V), true};
  } else {
    static_assert(SerializableValue<V>,
                  "ipc: this type can be neither received as raw bytes nor deserialized by Cereal; "
                  "give it a serialize() function");
    auto buf = std::make_shared<std::vector<std::byte>>();
    return {[buf](std::size_t bytes) -> void* {
              buf->resize(bytes);
              return buf->data();
            },
            [buf, &value] { deserialize_or_throw(*buf, value); }};
  }
}

}  // namespace detail
}  // namespace ipc
