// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/key_forms.hpp>

#include <fmt/format.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
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

class key_base {
 public:
  key_base() = default;
  key_base(const key_base&) = delete;
  key_base& operator=(const key_base&) = delete;
  virtual ~key_base() = default;

  [[nodiscard]] virtual std::size_t hash() const noexcept = 0;
  [[nodiscard]] virtual bool equals(const key_base& other) const noexcept = 0;
  [[nodiscard]] virtual std::string to_string() const = 0;
  [[nodiscard]] virtual const std::type_info& type() const noexcept = 0;
};

template <class K>
class key_model final : public key_base {
 public:
  explicit key_model(K value) : value_(std::move(value)) {}

  [[nodiscard]] std::size_t hash() const noexcept override { return std::hash<K>{}(value_); }
  [[nodiscard]] bool equals(const key_base& other) const noexcept override {
    return other.type() == typeid(K) && static_cast<const key_model&>(other).value_ == value_;
  }
  [[nodiscard]] std::string to_string() const override { return fmt::format("{}", value_); }
  [[nodiscard]] const std::type_info& type() const noexcept override { return typeid(K); }
  [[nodiscard]] const K& value() const noexcept { return value_; }

 private:
  K value_;
};

}  // namespace detail

/// A registry key of any type, or the identity of an anonymous task.
class any_key {
 public:
  template <detail::user_key K>
  explicit any_key(K key)
      : key_(std::make_shared<const detail::key_model<detail::stored_key_t<K>>>(
            detail::to_stored_key(std::move(key)))) {}

  [[nodiscard]] static any_key anonymous(std::uint64_t id) { return any_key(anonymous_tag{}, id); }

  [[nodiscard]] bool is_anonymous() const noexcept { return key_ == nullptr; }

  /// The key, when it is a `K`; nullptr otherwise. Text keys are
  /// `std::string`s.
  template <class K>
  [[nodiscard]] const K* get() const noexcept {
    detail::require_stored_form<K>();
    if (key_ == nullptr || key_->type() != typeid(K)) return nullptr;
    return &static_cast<const detail::key_model<K>&>(*key_).value();
  }

  /// Whether this is the key `probe` looks for.
  template <class K>
  [[nodiscard]] bool matches(const detail::key_probe<K>& probe) const noexcept {
    const auto* stored = get<typename detail::key_probe<K>::stored>();
    return stored != nullptr && *stored == probe.value;
  }

  /// The key as fmt formats it; `anonymous #N` for an anonymous task.
  [[nodiscard]] std::string to_string() const {
    return key_ != nullptr ? key_->to_string() : fmt::format("anonymous #{}", anonymous_id_);
  }

  [[nodiscard]] std::size_t hash() const noexcept {
    return key_ != nullptr ? key_->hash() : std::hash<std::uint64_t>{}(anonymous_id_);
  }

  friend bool operator==(const any_key& a, const any_key& b) noexcept {
    if (a.key_ == nullptr || b.key_ == nullptr) {
      return a.key_ == b.key_ && a.anonymous_id_ == b.anonymous_id_;
    }
    return a.key_->equals(*b.key_);
  }

 private:
  // A tag, not a bare integer: keys of type std::uint64_t must reach the
  // public constructor.
  struct anonymous_tag {};
  any_key(anonymous_tag, std::uint64_t anonymous_id) noexcept : anonymous_id_(anonymous_id) {}

  std::shared_ptr<const detail::key_base> key_;
  std::uint64_t anonymous_id_ = 0;
};

}  // namespace await_tree

template <>
struct std::hash<await_tree::any_key> {
  std::size_t operator()(const await_tree::any_key& k) const noexcept { return k.hash(); }
};

template <>
struct fmt::formatter<await_tree::any_key> : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const await_tree::any_key& k, FormatContext& ctx) const {
    return fmt::formatter<std::string>::format(k.to_string(), ctx);
  }
};
