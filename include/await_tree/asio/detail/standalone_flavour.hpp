// SPDX-License-Identifier: Apache-2.0
#pragma once

// The flavour (see flavour.hpp) of standalone Asio, namespace ::asio.

#include <await_tree/asio/detail/flavour.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/execution.hpp>
#include <asio/io_context.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>

#include <utility>

namespace await_tree::asio::detail {

struct standalone_flavour {
  using context_switched = ::asio::detail::awaitable_thread_has_context_switched;
  using any_io_executor = ::asio::any_io_executor;
  using io_executor = ::asio::io_context::executor_type;
  using execution_context = ::asio::execution_context;

  template <class E>
  static constexpr bool is_executor =
      ::asio::execution::is_executor<E>::value || ::asio::is_executor<E>::value;

  static constexpr const auto& query = ::asio::query;
  static constexpr const auto& require = ::asio::require;
  static constexpr const auto& prefer = ::asio::prefer;
  static constexpr const auto& execute = ::asio::execution::execute;

  template <class... Args>
  static auto co_spawn(Args&&... args) {
    return ::asio::co_spawn(std::forward<Args>(args)...);
  }
};

template <class T, class Executor>
struct flavour_of_awaitable<::asio::awaitable<T, Executor>> {
  using type = standalone_flavour;
};

}  // namespace await_tree::asio::detail
