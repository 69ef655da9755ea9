// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which Asio a task uses: standalone Asio (namespace ::asio) or Boost.Asio
// (::boost::asio). The integration is written once against a *flavour*: a
// struct naming the few entities of its Asio that the integration needs
// (standalone_flavour.hpp, boost_flavour.hpp). The flavour of a task is that
// of the awaitable it runs, so the same templates serve both namespaces,
// `await_tree::asio` and `await_tree::boost_asio`.
//
// A flavour F provides:
//   F::context_switched        the awaitable thread's flag, as a coroutine awaits it
//   F::any_io_executor, F::io_executor, F::execution_context
//   F::is_executor<E>          whether E is an executor of that Asio
//   F::query, F::require, F::prefer, F::execute   that Asio's customisation points
//   F::co_spawn(args...)       that Asio's co_spawn

namespace await_tree::asio::detail {

/// Specialised by each flavour for its `awaitable<T, Executor>`.
template <class Awaitable>
struct flavour_of_awaitable {};

/// The flavour of the Asio that `Awaitable` belongs to.
template <class Awaitable>
using flavour_of = typename flavour_of_awaitable<Awaitable>::type;

/// An `awaitable<T, Executor>` of an Asio whose flavour header is included.
template <class A>
concept awaitable = requires {
  typename flavour_of<A>;
};

}  // namespace await_tree::asio::detail
