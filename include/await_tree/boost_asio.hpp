// SPDX-License-Identifier: Apache-2.0
#pragma once

// await-tree for Boost.Asio (Boost 1.78 or later: Asio 1.22) coroutines: the
// same integration as <await_tree/asio.hpp>, written once for both
// (asio/detail/flavour.hpp), under the namespace await_tree::boost_asio.
//
//   await_tree::boost_asio::co_spawn(io, reg, conn_id, "connection", serve(std::move(socket)),
//                                    boost::asio::detached);
//   ...
//   co_await await_tree::boost_asio::instrument(
//       socket.async_read_some(buf, boost::asio::use_awaitable), "read");
//
// CMake: find_package(await_tree CONFIG REQUIRED COMPONENTS boost_asio) and
// link await_tree::boost_asio, which brings Boost's headers.

#include <boost/asio/detail/config.hpp>

#if !defined(BOOST_ASIO_HAS_CO_AWAIT)
#error "Boost.Asio's coroutine support is off: it needs C++20 coroutines (-std=c++20)"
#endif

#include <await_tree/asio/co_spawn.hpp>
#include <await_tree/asio/detail/boost_flavour.hpp>
#include <await_tree/asio/instrument.hpp>
#include <await_tree/asio/task_executor.hpp>
#include <await_tree/await_tree.hpp>

#include <boost/asio/version.hpp>

static_assert(BOOST_ASIO_VERSION >= 102200,
              "await_tree/boost_asio.hpp needs Boost.Asio 1.22 (Boost 1.78) or later");

namespace await_tree::boost_asio {

using await_tree::asio::co_spawn;
using await_tree::asio::instrument;

/// The executor a task of Boost.Asio runs on (see basic_task_executor).
template <class Inner>
using task_executor =
    await_tree::asio::detail::basic_task_executor<await_tree::asio::detail::boost_flavour, Inner>;

}  // namespace await_tree::boost_asio
