// SPDX-License-Identifier: Apache-2.0
// The cost of one instrumented await: inside a task, outside any task, the
// Rust crate's `basic` shape, heap allocations per await (with each way of
// naming a node), bytes per node.

#include <await_tree/await_tree.hpp>

#include "../counting_new.hpp"
#include "compare.hpp"
#include "named_awaits.hpp"
#include "runtime/combinators.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <benchmark/benchmark.h>

using counting_new::allocations;

using await_tree::instrument;

namespace {

rt::task<int> ready_child(int i) { co_return i; }

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
  benchmark::DoNotOptimize(sum);
}

/// Runs `body` to completion, under a registered root when `rooted`.
void run(await_tree::registry& reg, rt::task<> body, bool rooted) {
  auto drive = [](auto awaitable) -> rt::task<> { co_await std::move(awaitable); };
  if (rooted) {
    rt::task<> t = drive(reg.register_task(0, "bench").instrument(std::move(body)));
    t.start();
  } else {
    body.start();
  }
}

void child_in_task(benchmark::State& state) {
  await_tree::registry reg;
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run(reg, await_children<false>(ops), true); },
      [&](std::size_t ops) { run(reg, await_children<true>(ops), true); });
}

void child_outside_task(benchmark::State& state) {
  await_tree::registry reg;
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run(reg, await_children<false>(ops), false); },
      [&](std::size_t ops) { run(reg, await_children<true>(ops), false); });
}

/// The Rust crate's `basic` bench: join(fut1: yield; fut2: yield, yield), the
/// two futures and the join instrumented, on a single-threaded executor.
template <bool Instrumented>
rt::task<> basic_shape(rt::executor& ex, std::size_t ops) {
  auto fut1 = [&]() -> rt::task<> { co_await ex.yield(); };
  auto fut2 = [&]() -> rt::task<> {
    co_await ex.yield();
    co_await ex.yield();
  };
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      co_await instrument(rt::when_all(instrument(fut1(), "fut1"), instrument(fut2(), "fut2")),
                          "join");
    } else {
      co_await rt::when_all(fut1(), fut2());
    }
  }
}

void basic(benchmark::State& state) {
  await_tree::registry reg;
  rt::executor ex;
  const auto batch = [&](auto body) {
    rt::spawn(ex, reg.register_task(0, "bench").instrument(std::move(body)));
    ex.run();
  };
  bench::compare(
      state, 1'000, [&](std::size_t ops) { batch(basic_shape<false>(ex, ops)); },
      [&](std::size_t ops) { batch(basic_shape<true>(ex, ops)); });
}

void allocations_per_await(benchmark::State& state) {
  await_tree::registry reg;
  constexpr std::size_t ops = 10'000;
  double plain = 0;
  double instrumented = 0;
  for (auto _ : state) {
    std::size_t before = allocations;
    run(reg, await_children<false>(ops), true);
    plain = static_cast<double>(allocations - before) / ops;
    before = allocations;
    run(reg, await_children<true>(ops), true);
    instrumented = static_cast<double>(allocations - before) / ops;
  }
  // The child task's frame is the one allocation both pay.
  state.counters["plain_allocs"] = plain;
  state.counters["instrumented_allocs"] = instrumented;
  state.counters["extra_allocs"] = instrumented - plain;
}

/// Heap allocations per await beyond a plain await's (the child's frame),
/// for each naming; after a first run, which names the call sites once.
void allocations_per_named_await(benchmark::State& state) {
  using bench::naming;
  await_tree::registry reg;
  constexpr std::size_t ops = 10'000;
  int sum = 0;
  const auto per_await = [&](rt::task<> body) {
    const std::size_t before = allocations;
    run(reg, std::move(body), true);
    return static_cast<double>(allocations - before) / ops;
  };
  run(reg, bench::await_named_children<naming::call_site>(1, sum), true);
  run(reg, bench::await_named_children<naming::coroutine_span>(1, sum), true);
  double plain = 0;
  double formatted = 0;
  double call_site = 0;
  double coroutine_span = 0;
  for (auto _ : state) {
    plain = per_await(await_children<false>(ops));
    formatted = per_await(bench::await_named_children<naming::formatted>(ops, sum));
    call_site = per_await(bench::await_named_children<naming::call_site>(ops, sum));
    coroutine_span = per_await(bench::await_named_children<naming::coroutine_span>(ops, sum));
  }
  benchmark::DoNotOptimize(sum);
  state.counters["formatted_extra_allocs"] = formatted - plain;
  state.counters["call_site_extra_allocs"] = call_site - plain;
  state.counters["coroutine_span_extra_allocs"] = coroutine_span - plain;
}

void bytes_per_node(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(await_tree::detail::tree_state::bytes_per_node);
  state.counters["bytes_per_node"] =
      static_cast<double>(await_tree::detail::tree_state::bytes_per_node);
}

}  // namespace

BENCHMARK(child_in_task)->Unit(benchmark::kMillisecond);
BENCHMARK(child_outside_task)->Unit(benchmark::kMillisecond);
BENCHMARK(basic)->Unit(benchmark::kMillisecond);
BENCHMARK(allocations_per_await)->Unit(benchmark::kMillisecond);
BENCHMARK(allocations_per_named_await)->Unit(benchmark::kMillisecond);
BENCHMARK(bytes_per_node);

BENCHMARK_MAIN();
