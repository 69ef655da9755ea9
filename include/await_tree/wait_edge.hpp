// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/detail/thread_context.hpp>

#include <optional>
#include <string>

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

/// What a span points at when it waits for something. A resource is one
/// (referenced: it outlives the await); a key is kept in an owned_wait_target.
class wait_target {
 public:
  wait_target() = default;
  wait_target(const wait_target&) = delete;
  wait_target& operator=(const wait_target&) = delete;
  virtual ~wait_target() = default;

  /// A copy of what the snapshot needs, taken under the waiting tree's lock.
  [[nodiscard]] virtual wait_edge describe() const = 0;
};

/// A target that the span owns, so copies of the span copy it too.
class owned_wait_target : public wait_target {
 public:
  [[nodiscard]] virtual const owned_wait_target* clone() const = 0;
};

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
}  // namespace await_tree
