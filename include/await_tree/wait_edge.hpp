// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/detail/thread_context.hpp>
#include <await_tree/detail/wait_target.hpp>
#include <await_tree/span.hpp>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace await_tree {

/// What a pending node waits for, as its snapshot saw it: a task (by key), or
/// a resource and who held it. Declared with `span::waits_for`; read by the
/// deadlock finder (wait_cycles.hpp).
struct wait_edge {
  /// The task waited on, for `waits_for(key)`.
  std::optional<any_key> task{};
  /// The resource's name, for `waits_for(resource)`.
  std::string resource{};
  /// Whether the resource was held when the snapshot was taken.
  bool held = false;
  /// Where its holder was when it acquired it; empty when that was outside
  /// any task. Checked against the holder's tree when the graph is built.
  detail::position holder{};
};

namespace detail {

template <class Key>
class key_target final : public owned_wait_target {
 public:
  explicit key_target(Key key) : key_(std::move(key)) {}

  [[nodiscard]] wait_edge describe() const override { return {.task = any_key(key_)}; }
  [[nodiscard]] const owned_wait_target* clone() const override { return new key_target(key_); }

 private:
  Key key_;
};

}  // namespace detail
template <class Key>
span&& span::waits_for(Key key) && {
  static_assert(registry_key<Key>,
                "await_tree: waits_for takes a registry key (hashable, equality-comparable, "
                "formattable by fmt)");
  static_assert(!std::is_pointer_v<Key>,
                "await_tree: a pointer never equals a registered key: pass the key's own type, "
                "such as std::string");
  set_wait(new detail::key_target<Key>(std::move(key)), true);
  return std::move(*this);
}

template <class Key>
span span::waits_for(Key key) const& {
  return span(*this).waits_for(std::move(key));
}

namespace detail {
inline std::optional<wait_edge> describe_wait(const span& s) {
  if (s.wait_ == nullptr) return std::nullopt;
  return s.wait_->describe();
}
}  // namespace detail

}  // namespace await_tree
