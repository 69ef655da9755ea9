// SPDX-License-Identifier: Apache-2.0
// The cost of one instrumented await: inside a task, outside any task, the
// Rust crate's `basic` shape, heap allocations per await (with each way of
// naming a node), bytes per node.

#include <await_tree/await_tree.hpp>

#include "../counting_new.hpp"
#include "compare.hpp"
#include "named_awaits.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>

using counting_new::allocations;

namespace {

using bench::await_children;
using bench::run_to_end;

void child_in_task(benchmark::State& state) {
  await_tree::registry reg;
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run_to_end(await_children<false>(ops), &reg); },
      [&](std::size_t ops) { run_to_end(await_children<true>(ops), &reg); });
}

void child_outside_task(benchmark::State& state) {
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run_to_end(await_children<false>(ops), nullptr); },
      [&](std::size_t ops) { run_to_end(await_children<true>(ops), nullptr); });
}

void basic(benchmark::State& state) {
  await_tree::registry reg;
  rt::executor ex;
  bench::compare(
      state, 1'000, [&](std::size_t ops) { bench::run_joins<false>(reg, ex, ops); },
      [&](std::size_t ops) { bench::run_joins<true>(reg, ex, ops); });
}

void allocations_per_await(benchmark::State& state) {
  await_tree::registry reg;
  constexpr std::size_t ops = 10'000;
  double plain = 0;
  double instrumented = 0;
  for (auto _ : state) {
    std::size_t before = allocations;
    run_to_end(await_children<false>(ops), &reg);
    plain = static_cast<double>(allocations - before) / ops;
    before = allocations;
    run_to_end(await_children<true>(ops), &reg);
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
  const auto per_await = [&](auto body) {
    const std::size_t before = allocations;
    run_to_end(std::move(body), &reg);
    return static_cast<double>(allocations - before) / ops;
  };
  run_to_end(bench::await_named_children<naming::call_site>(1, sum), &reg);
  run_to_end(bench::await_named_children<naming::coroutine_span>(1, sum), &reg);
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
