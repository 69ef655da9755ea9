// SPDX-License-Identifier: Apache-2.0
#pragma once

// The two ways the context contract is tested: on the examples' integrated
// task type (its promise derives from promise_mixin), where every tree must
// be exact, and on the same task type knowing nothing of await-tree, where a
// tree may show less but never a node of another task, nor one under a node
// that is not its ancestor.

#include "runtime/combinators.hpp"
#include "runtime/task.hpp"

#include <type_traits>
#include <utility>

namespace test {

template <class PromiseBase>
struct runtime_mode {
  template <class T = void>
  using task = rt::basic_task<T, PromiseBase>;

  template <class... Awaitables>
  static auto when_all(Awaitables&&... awaitables) {
    return rt::detail::all_join<PromiseBase>(std::forward<Awaitables>(awaitables)...);
  }

  static constexpr bool exact = std::is_same_v<PromiseBase, await_tree::promise_mixin>;
};

using integrated = runtime_mode<await_tree::promise_mixin>;
using not_integrated = runtime_mode<rt::no_mixin>;

}  // namespace test
