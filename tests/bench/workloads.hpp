// SPDX-License-Identifier: Apache-2.0
#pragma once

// The await workloads measured twice: in wall-clock time (bench_await.cpp) and
// in instructions (instructions.cpp, counted by instructions.sh). Each has a
// plain variant, the program without await-tree (the examples' task type
// without integration, rt::plain_task, and plain awaits), and an instrumented
// one (the integrated task type, rt::task, with the awaits instrumented).

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

namespace bench {

template <bool Instrumented, class T = void>
using task_of = std::conditional_t<Instrumented, rt::task<T>, rt::plain_task<T>>;

/// Where the workloads leave their results, so that no compiler drops the
/// work that computes them.
inline volatile int sink = 0;

template <bool Instrumented>
task_of<Instrumented, int> ready_child(int i) {
  co_return i;
}

/// Awaits a child that completes at once, `ops` times.
template <bool Instrumented>
task_of<Instrumented> await_children(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      sum += co_await await_tree::instrument(ready_child<true>(static_cast<int>(i)), "child");
    } else {
      sum += co_await ready_child<false>(static_cast<int>(i));
    }
  }
  sink = sum;
}

/// Awaits, plainly, a child that completes at once, `ops` times: from a
/// coroutine of the integrated task type or of the plain one.
template <bool Integrated>
task_of<Integrated> await_plain_children(std::size_t ops) {
  for (std::size_t i = 0; i < ops; ++i) sink = co_await ready_child<Integrated>(0);
}

/// The Rust crate's `basic` bench: join(fut1: yield; fut2: yield, yield), the
/// two futures and the join instrumented, `ops` joins.
template <bool Instrumented>
task_of<Instrumented> joins_of_yields(rt::executor& ex, std::size_t ops) {
  auto fut1 = [&]() -> task_of<Instrumented> { co_await ex.yield(); };
  auto fut2 = [&]() -> task_of<Instrumented> {
    co_await ex.yield();
    co_await ex.yield();
  };
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      co_await await_tree::instrument(rt::when_all(await_tree::instrument(fut1(), "fut1"),
                                                   await_tree::instrument(fut2(), "fut2")),
                                      "join");
    } else {
      co_await rt::plain_when_all(fut1(), fut2());
    }
  }
}

/// Runs `body` to completion on this thread, under a registered root when
/// `registry` is given.
template <class Task>
void run_to_end(Task body, await_tree::registry* registry) {
  if (registry == nullptr) {
    body.start();
    return;
  }
  auto drive = [](auto awaitable) -> rt::plain_task<> { co_await std::move(awaitable); };
  rt::plain_task<> root = drive(registry->register_task(0, "bench").instrument(std::move(body)));
  root.start();
}

/// Runs the joins of joins_of_yields as one registered task on `ex`.
template <bool Instrumented>
void run_joins(await_tree::registry& reg, rt::executor& ex, std::size_t ops) {
  rt::spawn(ex, reg.register_task(0, "bench").instrument(joins_of_yields<Instrumented>(ex, ops)));
  ex.run();
}

}  // namespace bench
