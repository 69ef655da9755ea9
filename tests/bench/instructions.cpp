// SPDX-License-Identifier: Apache-2.0
// The workloads whose cost tests/bench/instructions.sh counts in instructions
// (valgrind callgrind). Each runs one operation `ops` times, plain or
// instrumented; the script runs it for N and 2N operations and reports
// (Ir(2N) - Ir(N)) / N, so start-up and set-up cancel out.
//
//   instructions WORKLOAD plain|instrumented OPS
//   instructions --list
//
// "plain" is the program without await-tree: the examples' task type
// without integration (rt::plain_task) and plain awaits. "instrumented" is
// the integrated task type (rt::task) with the awaits instrumented.

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

using await_tree::instrument;

namespace {

template <bool Instrumented, class T = void>
using task_of = std::conditional_t<Instrumented, rt::task<T>, rt::plain_task<T>>;

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
      sum += co_await instrument(ready_child<true>(static_cast<int>(i)), "child");
    } else {
      sum += co_await ready_child<false>(static_cast<int>(i));
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
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

template <bool Instrumented>
void await_children_to_end(std::size_t ops, await_tree::registry* registry) {
  run_to_end(await_children<Instrumented>(ops), registry);
}

/// Row 1: an instrumented await of a child that completes at once, in a task.
void child_in_task(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    await_children_to_end<true>(ops, &reg);
  } else {
    await_children_to_end<false>(ops, &reg);
  }
}

/// Row 2: the Rust crate's `basic` shape, join(fut1: yield; fut2: yield,
/// yield) with the join and both futures instrumented, `ops` joins.
template <bool Instrumented>
task_of<Instrumented> joins_of_yields(rt::executor& ex, std::size_t ops) {
  auto fut1 = [&]() -> task_of<Instrumented> { co_await ex.yield(); };
  auto fut2 = [&]() -> task_of<Instrumented> {
    co_await ex.yield();
    co_await ex.yield();
  };
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      co_await instrument(rt::when_all(instrument(fut1(), "fut1"), instrument(fut2(), "fut2")),
                          "join");
    } else {
      co_await rt::plain_when_all(fut1(), fut2());
    }
  }
}

void join_of_yields(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  rt::executor ex;
  if (instrumented) {
    rt::spawn(ex, reg.register_task(0, "bench").instrument(joins_of_yields<true>(ex, ops)));
  } else {
    rt::spawn(ex, reg.register_task(0, "bench").instrument(joins_of_yields<false>(ex, ops)));
  }
  ex.run();
}

/// Row 3: an instrumented await outside any task, on a thread that never ran
/// a task.
void outside_task_fresh(bool instrumented, std::size_t ops) {
  std::thread([&] {
    if (instrumented) {
      await_children_to_end<true>(ops, nullptr);
    } else {
      await_children_to_end<false>(ops, nullptr);
    }
  }).join();
}

/// Row 4: the same on a thread that earlier ran a registered task whose
/// joins of plain yields may leave context behind (the measurement).
void outside_task_after_tasks(bool instrumented, std::size_t ops) {
  std::thread([&] {
    join_of_yields(true, 8);
    if (instrumented) {
      await_children_to_end<true>(ops, nullptr);
    } else {
      await_children_to_end<false>(ops, nullptr);
    }
  }).join();
}

template <bool Integrated>
task_of<Integrated> await_plain_children(std::size_t ops) {
  for (std::size_t i = 0; i < ops; ++i) co_await ready_child<Integrated>(0);
}

/// Row 5: a plain await of a child that completes at once, in a task, from a
/// coroutine of the integrated task type (instrumented) or not.
void plain_await_with_mixin(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    run_to_end(await_plain_children<true>(ops), &reg);
  } else {
    run_to_end(await_plain_children<false>(ops), &reg);
  }
}

/// Awaits a child that completes at once, `ops` times, under a span that
/// waits for `lock` or not.
template <bool WaitsFor>
rt::task<> await_children_waiting(std::size_t ops, const await_tree::resource& lock) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (WaitsFor) {
      sum += co_await instrument(ready_child<true>(static_cast<int>(i)),
                                 await_tree::span("child").waits_for(lock));
    } else {
      sum += co_await instrument(ready_child<true>(static_cast<int>(i)), "child");
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// Row 6: the deadlock finder's edge. "plain" is row 1's instrumented await,
/// "instrumented" the same await whose span waits_for a resource.
void waits_for_resource(bool with_edge, std::size_t ops) {
  await_tree::registry reg;
  const await_tree::resource lock("lock");
  if (with_edge) {
    run_to_end(await_children_waiting<true>(ops, lock), &reg);
  } else {
    run_to_end(await_children_waiting<false>(ops, lock), &reg);
  }
}

struct workload {
  std::string_view name;
  void (*run)(bool instrumented, std::size_t ops);
};

constexpr workload workloads[] = {
    {"child_in_task", &child_in_task},
    {"join_of_yields", &join_of_yields},
    {"outside_task_fresh", &outside_task_fresh},
    {"outside_task_after_tasks", &outside_task_after_tasks},
    {"plain_await_with_mixin", &plain_await_with_mixin},
    {"waits_for_resource", &waits_for_resource},
};

int usage() {
  std::fputs("usage: instructions WORKLOAD plain|instrumented OPS | --list\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--list") {
    for (const workload& w : workloads) std::printf("%.*s\n", int(w.name.size()), w.name.data());
    return 0;
  }
  if (argc != 4) return usage();
  const std::string_view variant = argv[2];
  if (variant != "plain" && variant != "instrumented") return usage();
  const long ops = std::strtol(argv[3], nullptr, 10);
  if (ops <= 0) return usage();
  for (const workload& w : workloads) {
    if (w.name == argv[1]) {
      w.run(variant == "instrumented", static_cast<std::size_t>(ops));
      return 0;
    }
  }
  return usage();
}
