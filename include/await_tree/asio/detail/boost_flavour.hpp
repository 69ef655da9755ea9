// SPDX-License-Identifier: Apache-2.0
#pragma once

// The flavour (see flavour.hpp) of Boost.Asio, namespace ::boost::asio.

#include <await_tree/asio/detail/flavour.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

#include <utility>

namespace await_tree::asio::detail {

struct boost_flavour {
  using context_switched = ::boost::asio::detail::awaitable_thread_has_context_switched;
  using any_io_executor = ::boost::asio::any_io_executor;
  using io_executor = ::boost::asio::io_context::executor_type;
  using execution_context = ::boost::asio::execution_context;

  template <class E>
  static constexpr bool is_executor =
      ::boost::asio::execution::is_executor<E>::value || ::boost::asio::is_executor<E>::value;

  static constexpr const auto& query = ::boost::asio::query;
  static constexpr const auto& require = ::boost::asio::require;
  static constexpr const auto& prefer = ::boost::asio::prefer;
  static constexpr const auto& execute = ::boost::asio::execution::execute;

  template <class... Args>
  static auto co_spawn(Args&&... args) {
    return ::boost::asio::co_spawn(std::forward<Args>(args)...);
  }
};

template <class T, class Executor>
struct flavour_of_awaitable<::boost::asio::awaitable<T, Executor>> {
  using type = boost_flavour;
};

}  // namespace await_tree::asio::detail
