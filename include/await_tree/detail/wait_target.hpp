// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a span may point at when its await waits for something (see
// wait_edge.hpp), declared apart so that span.hpp, and so the await path,
// compile without any_key.hpp and fmt.

namespace await_tree {

struct wait_edge;

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
class key_target;

}  // namespace detail
}  // namespace await_tree
