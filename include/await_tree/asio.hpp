// SPDX-License-Identifier: Apache-2.0
#pragma once

// await-tree for standalone Asio (1.22 or later) coroutines.
//
//   await_tree::asio::co_spawn(io, reg, conn_id, "connection", serve(std::move(socket)),
//                              asio::detached);
//   ...
//   co_await await_tree::asio::instrument(socket.async_read_some(buf, asio::use_awaitable),
//                                         "read");
//
// Kept apart from <await_tree/await_tree.hpp>: the core never depends on Asio.
// See README.md, "Asio", for what is exact and what it costs. The integration
// is written once for both Asios (asio/detail/flavour.hpp); Boost.Asio's
// umbrella is <await_tree/boost_asio.hpp>.

#include <asio/detail/config.hpp>

// Asio 1.22 switches its coroutine support on for GCC and MSVC only; clang
// (16 and later) supports it too, once asked to.
#if !defined(ASIO_HAS_CO_AWAIT)
#error "Asio's coroutine support is off: with clang and Asio 1.22, define ASIO_HAS_CO_AWAIT=1"
#endif

#include <await_tree/asio/co_spawn.hpp>
#include <await_tree/asio/detail/standalone_flavour.hpp>
#include <await_tree/asio/instrument.hpp>
#include <await_tree/asio/task_executor.hpp>
#include <await_tree/await_tree.hpp>

#include <asio/version.hpp>

static_assert(ASIO_VERSION >= 102200, "await_tree/asio.hpp needs Asio 1.22 or later");

namespace await_tree::asio {

/// The executor a task of standalone Asio runs on (see basic_task_executor).
template <class Inner>
using task_executor = detail::basic_task_executor<detail::standalone_flavour, Inner>;

}  // namespace await_tree::asio
