// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace await_tree::detail {

/// Text given as a key: a string literal, a `char` pointer or array, a
/// `std::string_view` or a `std::string`. All of them are stored as a
/// `std::string` and compared by content, so a task registered under
/// `"worker"` is found by `std::string("worker")` and by a string view.
template <class K>
concept text_key = std::same_as < std::decay_t<K>,
const char* > || std::same_as<std::decay_t<K>, char*> ||
    std::same_as<std::decay_t<K>, std::string_view> || std::same_as<std::decay_t<K>, std::string>;

/// Text that is not a `std::string` yet: stored as a copy of its view.
template <class K>
concept borrowed_text_key = text_key<K> && !std::same_as<std::decay_t<K>, std::string>;

template <class K>
struct stored_key {
  using type = std::decay_t<K>;
};
template <text_key K>
struct stored_key<K> {
  using type = std::string;
};

/// The type a key of type `K` is stored as, and found as by `get<>` and
/// `collect<>`.
template <class K>
using stored_key_t = typename stored_key<K>::type;

/// Rejects, with the reason, the key types that would register a task that
/// lookups by an equal-looking key could miss.
template <class K>
constexpr void require_findable_key() {
  static_assert(!std::is_floating_point_v<std::decay_t<K>>,
                "await_tree: a floating-point key cannot be found again reliably (NaN is not "
                "equal to itself, and a value recomputed differently may differ in its last "
                "bit); use an integer or a string key");
}

/// Rejects key types that are never stored: `get<>` and `collect<>` with them
/// would find nothing.
template <class K>
constexpr void require_stored_form() {
  require_findable_key<K>();
  static_assert(std::same_as<K, stored_key_t<K>>,
                "await_tree: text keys (string literals, char pointers, std::string_view) are "
                "stored as std::string; ask for std::string");
}

/// The text in a `char` array: up to its first null character, or the
/// whole array when it has none (never read past its end).
template <std::size_t N>
[[nodiscard]] constexpr std::string_view text_in_array(const char (&chars)[N]) noexcept {
  const char* end = std::char_traits<char>::find(chars, N, '\0');
  return std::string_view(chars, end != nullptr ? static_cast<std::size_t>(end - chars) : N);
}

/// The text of a text key. A null `char` pointer has none, so it is refused.
template <text_key K>
[[nodiscard]] std::string_view text_of(const K& key) {
  if constexpr (std::is_array_v<K>) {
    return text_in_array(key);
  } else if constexpr (std::is_pointer_v<std::remove_cvref_t<K>>) {
    if (key == nullptr) throw std::invalid_argument("await_tree: a null char pointer as a key");
  }
  return std::string_view(key);
}

/// The key as stored.
template <class K>
[[nodiscard]] stored_key_t<K> to_stored_key(K&& key) {
  require_findable_key<K>();
  if constexpr (borrowed_text_key<K>) {
    return std::string(text_of(key));
  } else {
    return std::forward<K>(key);
  }
}

/// What a lookup compares stored keys with, without making a stored key:
/// text as a view, anything else by reference.
template <class K>
struct key_probe {
  using stored = stored_key_t<K>;
  using view = std::conditional_t<text_key<K>, std::string_view, const stored&>;

  view value;
};

/// The probe of `key`.
template <class K>
[[nodiscard]] key_probe<K> probe_of(const K& key) {
  require_findable_key<K>();
  if constexpr (text_key<K>) {
    return key_probe<K>{text_of(key)};
  } else {
    return key_probe<K>{key};
  }
}

}  // namespace await_tree::detail
