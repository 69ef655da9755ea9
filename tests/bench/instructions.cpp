// SPDX-License-Identifier: Apache-2.0
// The workloads whose cost tests/bench/instructions.sh counts in instructions
// (valgrind callgrind). Each runs one operation `ops` times, plain or
// instrumented; the script runs it for N and 2N operations and reports
// (Ir(2N) - Ir(N)) / N, so start-up and set-up cancel out.
//
//   instructions WORKLOAD plain|instrumented OPS
//   instructions --list

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

using mixin_task = rt::basic_task<void, await_tree::promise_mixin>;

rt::task<int> ready_child(int i) { co_return i; }

/// Awaits a child that completes at once, `ops` times.
template <bool Instrumented>
rt::task<> await_children(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      sum += co_await instrument(ready_child(static_cast<int>(i)), "child");
    } else {
      sum += co_await ready_child(static_cast<int>(i));
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// Runs `body` to completion on this thread, under a registered root when
/// `registry` is given.
void run_to_end(rt::task<> body, await_tree::registry* registry) {
  if (registry == nullptr) {
    body.start();
    return;
  }
  auto drive = [](auto awaitable) -> rt::task<> { co_await std::move(awaitable); };
  rt::task<> root = drive(registry->register_task(0, "bench").instrument(std::move(body)));
  root.start();
}

/// Row 1: an instrumented await of a child that completes at once, in a task.
void child_in_task(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  run_to_end(instrumented ? await_children<true>(ops) : await_children<false>(ops), &reg);
}

/// Row 2: the Rust crate's `basic` shape, join(fut1: yield; fut2: yield,
/// yield) with the join and both futures instrumented, `ops` joins.
void join_of_yields(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  rt::executor ex;
  auto body = [&]() -> rt::task<> {
    auto fut1 = [&]() -> rt::task<> { co_await ex.yield(); };
    auto fut2 = [&]() -> rt::task<> {
      co_await ex.yield();
      co_await ex.yield();
    };
    for (std::size_t i = 0; i < ops; ++i) {
      if (instrumented) {
        co_await instrument(rt::when_all(instrument(fut1(), "fut1"), instrument(fut2(), "fut2")),
                            "join");
      } else {
        co_await rt::when_all(fut1(), fut2());
      }
    }
  };
  rt::spawn(ex, reg.register_task(0, "bench").instrument(body()));
  ex.run();
}

/// Row 3: an instrumented await outside any task, on a thread that never ran
/// a task.
void outside_task_fresh(bool instrumented, std::size_t ops) {
  std::thread([&] {
    run_to_end(instrumented ? await_children<true>(ops) : await_children<false>(ops), nullptr);
  }).join();
}

/// Row 4: the same on a thread that earlier ran a registered task whose
/// joins of plain yields may leave context behind (the measurement).
void outside_task_after_tasks(bool instrumented, std::size_t ops) {
  std::thread([&] {
    join_of_yields(true, 8);
    run_to_end(instrumented ? await_children<true>(ops) : await_children<false>(ops), nullptr);
  }).join();
}

mixin_task ready_mixin_child() { co_return; }
rt::task<> ready_plain_child() { co_return; }

template <class Task, class Child>
Task await_plain_children(std::size_t ops, Child child) {
  for (std::size_t i = 0; i < ops; ++i) co_await child();
}

/// Row 5: a plain await of a child that completes at once, in a task, from a
/// coroutine whose promise derives from promise_mixin (instrumented) or not.
void plain_await_with_mixin(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  auto drive = [](auto awaitable) -> rt::task<> { co_await std::move(awaitable); };
  rt::task<> root = instrumented
                        ? drive(reg.register_task(0, "bench").instrument(
                              await_plain_children<mixin_task>(ops, &ready_mixin_child)))
                        : drive(reg.register_task(0, "bench").instrument(
                              await_plain_children<rt::task<>>(ops, &ready_plain_child)));
  root.start();
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
