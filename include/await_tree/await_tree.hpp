// SPDX-License-Identifier: Apache-2.0
#pragma once

// await-tree: the logical call tree of every coroutine task, live.
//
//   co_await await_tree::instrument(read_block(id), "read block");
//
// See README.md for the tour and the guarantees.

#include <await_tree/any_key.hpp>
#include <await_tree/call_site.hpp>
#include <await_tree/config.hpp>
#include <await_tree/context.hpp>
#include <await_tree/coroutine_span.hpp>
#include <await_tree/dump.hpp>
#include <await_tree/format.hpp>
#include <await_tree/formatted_span.hpp>
#include <await_tree/grouped.hpp>
#include <await_tree/instrumented.hpp>
#include <await_tree/promise.hpp>
#include <await_tree/registry.hpp>
#include <await_tree/resource.hpp>
#include <await_tree/span.hpp>
#include <await_tree/tree.hpp>
#include <await_tree/tree_root.hpp>
#include <await_tree/wait_cycles.hpp>
#include <await_tree/waiting.hpp>
#include <await_tree/watchdog.hpp>

// The handlers need POSIX signals and write(2).
#if defined(__unix__) || defined(__APPLE__)
#include <await_tree/crash_handlers.hpp>
#include <await_tree/signal_dump.hpp>
#endif
