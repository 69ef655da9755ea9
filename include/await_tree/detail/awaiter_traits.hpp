// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

namespace await_tree::detail {

/// The awaiter `co_await a` would use: a member or free `operator co_await`,
/// or `a` itself. When `a` is its own awaiter this returns a reference, so
/// the wrapper awaits the caller's object and never a copy of it.
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A>()));

template <class A>
using await_result_t = decltype(std::declval<awaiter_t<A>&>().await_resume());

}  // namespace await_tree::detail
