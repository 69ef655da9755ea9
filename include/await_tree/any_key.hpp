// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/key_forms.hpp>

#include <fmt/format.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace await_tree {

namespace detail {
/// What a stored key must support: hashing, equality and fmt formatting.
template <class S>
concept storable_key = std::copyable<S> && std::equality_comparable<S> && requires(const S& k) {
  { std::hash<S>{}(k) } -> std::convertible_to<std::size_t>;
  requires fmt::is_formattable<S>::value;
};
}  // namespace detail

/// A registry key: any type whose stored form (see detail/key_forms.hpp:
/// text is stored as std::string, other types as themselves) supports
/// hashing, equality and fmt formatting.
template <class K>
concept registry_key = detail::storable_key<detail::stored_key_t<K>>;

class any_key;

namespace detail {

/// A key type of the user's: any_key itself excluded (checked first, before
/// registry_key would look at the incomplete any_key).
template <class K>
concept user_key = !std::same_as<K, any_key> && registry_key<K>;

/// How an any_key copies, compares, hashes and prints the key it holds: one
/// table per stored key type, in place of a virtual class on the heap.
struct key_operations {
  const std::type_info& type;
  bool (*equals)(const void* storage, const void* other_storage) noexcept;
  std::size_t (*hash)(const void* storage);
  std::string (*to_string)(const void* storage);
  void (*copy)(const void* from, void* to);
  void (*relocate)(void* from, void* to) noexcept;  // moves, then destroys `from`
  void (*destroy)(void* storage) noexcept;
};

/// Room for a key held in place: integers, small structs and a std::string
/// (whose short texts need no allocation either) fit. Larger keys are held
/// through a shared pointer, which fits.
inline constexpr std::size_t key_storage_size = 32;
inline constexpr std::size_t key_storage_alignment = alignof(void*);

template <class K>
inline constexpr bool key_held_in_place =
    sizeof(K) <= key_storage_size &&
    alignof(K) <= key_storage_alignment&& std::is_nothrow_move_constructible_v<K>;

/// What the storage holds for a key of type K.
template <class K>
using key_holder = std::conditional_t<key_held_in_place<K>, K, std::shared_ptr<const K>>;

template <class K>
[[nodiscard]] const K& held_key(const void* storage) noexcept {
  const auto& holder = *std::launder(static_cast<const key_holder<K>*>(storage));
  if constexpr (key_held_in_place<K>) {
    return holder;
  } else {
    return *holder;
  }
}

/// The holder of the stored form of `key`, a `K`: made in the caller's
/// place, so that a key held in place is never moved (a prvalue all the way).
template <class K, class Key>
[[nodiscard]] key_holder<K> make_key_holder(Key&& key) {
  if constexpr (key_held_in_place<K>) {
    return to_stored_key(std::forward<Key>(key));
  } else {
    return std::make_shared<const K>(to_stored_key(std::forward<Key>(key)));
  }
}

template <class K>
inline constexpr key_operations operations_of{
    .type = typeid(K),
    .equals =
        [](const void* storage, const void* other_storage) noexcept {
          return held_key<K>(storage) == held_key<K>(other_storage);
        },
    .hash = [](const void* storage) -> std::size_t { return std::hash<K>{}(held_key<K>(storage)); },
    .to_string = [](const void* storage) { return fmt::format("{}", held_key<K>(storage)); },
    .copy =
        [](const void* from, void* to) {
          ::new (to) key_holder<K>(*std::launder(static_cast<const key_holder<K>*>(from)));
        },
    .relocate =
        [](void* from, void* to) noexcept {
          auto& source = *std::launder(static_cast<key_holder<K>*>(from));
          ::new (to) key_holder<K>(std::move(source));
          source.~key_holder<K>();
        },
    .destroy =
        [](void* storage) noexcept {
          std::launder(static_cast<key_holder<K>*>(storage))->~key_holder<K>();
        },
};

}  // namespace detail

/// A registry key of any type, or the identity of an anonymous task. Keys
/// that fit (integers, strings, small structs) are held in place: making,
/// copying and dropping one allocates no more than copying the key does.
class any_key {
 public:
  // The table is named first (a pointer: nothing to undo if making the
  // holder throws), so that the pointer is written once, not cleared first.
  template <detail::user_key K>
  explicit any_key(K key) : operations_(&detail::operations_of<detail::stored_key_t<K>>) {
    using stored = detail::stored_key_t<K>;
    ::new (static_cast<void*>(storage_))
        detail::key_holder<stored>(detail::make_key_holder<stored>(std::move(key)));
  }

  any_key(const any_key& other) {
    if (other.operations_ != nullptr) {
      other.operations_->copy(other.storage_, storage_);
    } else {
      anonymous_id_ = other.anonymous_id_;
    }
    operations_ = other.operations_;
  }
  /// Leaves `other` the key `anonymous #0`.
  any_key(any_key&& other) noexcept { take(other); }
  any_key& operator=(const any_key& other) {
    if (this != &other) *this = any_key(other);
    return *this;
  }
  any_key& operator=(any_key&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  ~any_key() { reset(); }

  [[nodiscard]] static any_key anonymous(std::uint64_t id) { return any_key(anonymous_tag{}, id); }

  [[nodiscard]] bool is_anonymous() const noexcept { return operations_ == nullptr; }

  /// The key, when it is a `K`; nullptr otherwise. Text keys are
  /// `std::string`s.
  template <class K>
  [[nodiscard]] const K* get() const noexcept {
    detail::require_stored_form<K>();
    return holds<K>() ? &detail::held_key<K>(storage_) : nullptr;
  }

  /// Whether this is the key `probe` looks for.
  template <class K>
  [[nodiscard]] bool matches(const detail::key_probe<K>& probe) const noexcept {
    const auto* stored = get<typename detail::key_probe<K>::stored>();
    return stored != nullptr && *stored == probe.value;
  }

  /// The key as fmt formats it; `anonymous #N` for an anonymous task.
  [[nodiscard]] std::string to_string() const {
    return operations_ != nullptr ? operations_->to_string(storage_)
                                  : fmt::format("anonymous #{}", anonymous_id_);
  }

  /// The key's `std::hash`, computed when asked: registering a task never
  /// pays for it, only the collections that group keys do. Throws what the
  /// key type's hash throws.
  [[nodiscard]] std::size_t hash() const {
    return operations_ != nullptr ? operations_->hash(storage_)
                                  : std::hash<std::uint64_t>{}(anonymous_id_);
  }

  friend bool operator==(const any_key& a, const any_key& b) noexcept {
    if (a.operations_ == nullptr || b.operations_ == nullptr) {
      return a.operations_ == b.operations_ && a.anonymous_id_ == b.anonymous_id_;
    }
    return a.operations_->type == b.operations_->type &&
           a.operations_->equals(a.storage_, b.storage_);
  }

 private:
  // A tag, not a bare integer: keys of type std::uint64_t must reach the
  // public constructor.
  struct anonymous_tag {};
  any_key(anonymous_tag, std::uint64_t anonymous_id) noexcept : anonymous_id_(anonymous_id) {}

  /// Whether the key is a `K`. The table's address answers at once when the
  /// key was made in this binary; a key made in another shared object has
  /// its own copy of the table, and then the type names decide.
  template <class K>
  [[nodiscard]] bool holds() const noexcept {
    if (operations_ == &detail::operations_of<K>) return true;
    return operations_ != nullptr && operations_->type == typeid(K);
  }

  void take(any_key& other) noexcept {
    if (other.operations_ != nullptr) {
      other.operations_->relocate(other.storage_, storage_);
    } else {
      anonymous_id_ = other.anonymous_id_;
    }
    operations_ = std::exchange(other.operations_, nullptr);
    other.anonymous_id_ = 0;
  }
  void reset() noexcept {
    if (operations_ != nullptr) std::exchange(operations_, nullptr)->destroy(storage_);
  }

  const detail::key_operations* operations_ = nullptr;  // null: anonymous
  // The key, or an anonymous task's number: they share the bytes, so that a
  // registry entry is 8 bytes smaller.
  union {
    alignas(detail::key_storage_alignment) unsigned char storage_[detail::key_storage_size];
    std::uint64_t anonymous_id_ = 0;
  };
};

}  // namespace await_tree

template <>
struct std::hash<await_tree::any_key> {
  std::size_t operator()(const await_tree::any_key& k) const { return k.hash(); }
};

template <>
struct fmt::formatter<await_tree::any_key> : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const await_tree::any_key& k, FormatContext& ctx) const {
    return fmt::formatter<std::string>::format(k.to_string(), ctx);
  }
};
