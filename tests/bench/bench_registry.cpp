// SPDX-License-Identifier: Apache-2.0
// Registering tasks: a root registered and dropped, tasks spawned registered
// or not, registration from two threads at once, and bytes per idle task.

#include <await_tree/await_tree.hpp>

#include "compare.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <malloc.h>
#include <thread>
#include <vector>

namespace {

void register_and_drop(benchmark::State& state) {
  await_tree::registry reg;
  int key = 0;
  for (auto _ : state) {
    auto root = reg.register_task(++key, "task");
    benchmark::DoNotOptimize(root);
  }
  state.SetItemsProcessed(state.iterations());
}

void register_anonymous_and_drop(benchmark::State& state) {
  await_tree::registry reg;
  for (auto _ : state) {
    auto root = reg.register_anonymous("task");
    benchmark::DoNotOptimize(root);
  }
  state.SetItemsProcessed(state.iterations());
}

rt::task<> short_task(rt::executor& ex) { co_await ex.yield(); }

/// 10,000 tasks that yield once, spawned on one executor, registered or not.
void spawn_tasks(benchmark::State& state) {
  await_tree::registry reg;
  rt::executor ex;
  bench::compare(
      state, 10'000,
      [&](std::size_t ops) {
        for (std::size_t i = 0; i < ops; ++i) rt::spawn(ex, short_task(ex));
        ex.run();
      },
      [&](std::size_t ops) {
        for (std::size_t i = 0; i < ops; ++i) {
          rt::spawn(ex, reg.register_task(static_cast<int>(i), "task").instrument(short_task(ex)));
        }
        ex.run();
      });
}

/// Registrations per second from one thread, then from two and four at once,
/// on one registry: the ratios show whether registration serialises (on a
/// machine with fewer cores than threads, four can only share them). Keyed
/// registrations, and anonymous ones from one thread and from two.
void registration_scaling(benchmark::State& state) {
  constexpr int per_thread = 100'000;
  await_tree::registry reg;
  const auto register_many = [&](int first_key, bool anonymous) {
    for (int i = 0; i < per_thread; ++i) {
      auto root =
          anonymous ? reg.register_anonymous("task") : reg.register_task(first_key + i, "task");
      benchmark::DoNotOptimize(root);
    }
  };
  const auto per_second = [&](int threads, bool anonymous) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> others;
    for (int t = 1; t < threads; ++t) others.emplace_back(register_many, t * per_thread, anonymous);
    register_many(0, anonymous);
    for (std::thread& other : others) other.join();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return threads * per_thread / elapsed.count();
  };
  std::vector<double> one;
  std::vector<double> two;
  std::vector<double> four;
  std::vector<double> one_anonymous;
  std::vector<double> two_anonymous;
  for (auto _ : state) {
    one.push_back(per_second(1, false));
    two.push_back(per_second(2, false));
    four.push_back(per_second(4, false));
    one_anonymous.push_back(per_second(1, true));
    two_anonymous.push_back(per_second(2, true));
  }
  state.counters["one_thread_per_s"] = bench::median(one);
  state.counters["two_threads_per_s"] = bench::median(two);
  state.counters["four_threads_per_s"] = bench::median(four);
  state.counters["scaling"] = bench::median(two) / bench::median(one);
  state.counters["scaling_4"] = bench::median(four) / bench::median(one);
  state.counters["scaling_anonymous"] = bench::median(two_anonymous) / bench::median(one_anonymous);
}

/// Memory per registered idle task: the heap the registry takes (the tree,
/// its node arena, the entry, in slabs of 32) and the root, which
/// lives in the task's own frame. Tasks are registered past the peak of the
/// earlier benchmarks first, so that the measured ones get fresh trees, not
/// pooled ones whose memory is already counted.
void bytes_per_idle_task(benchmark::State& state) {
  constexpr std::size_t pooled_before = 50'000;
  constexpr std::size_t measured = 20'000;
  double heap_bytes = 0;
  for (auto _ : state) {
    await_tree::registry reg;
    std::vector<await_tree::tree_root> roots;
    roots.reserve(pooled_before + measured);
    for (std::size_t i = 0; i < pooled_before; ++i) {
      roots.push_back(reg.register_task(static_cast<int>(i), "task"));
    }
    const std::size_t before = mallinfo2().uordblks;
    for (std::size_t i = pooled_before; i < pooled_before + measured; ++i) {
      roots.push_back(reg.register_task(static_cast<int>(i), "task"));
    }
    heap_bytes = static_cast<double>(mallinfo2().uordblks - before) / measured;
  }
  state.counters["heap_bytes_per_task"] = heap_bytes;
  state.counters["root_bytes"] = sizeof(await_tree::tree_root);
  state.counters["bytes_per_node"] =
      static_cast<double>(await_tree::detail::tree_state::bytes_per_node);
}

}  // namespace

BENCHMARK(register_and_drop);
BENCHMARK(register_anonymous_and_drop);
BENCHMARK(spawn_tasks)->Unit(benchmark::kMillisecond);
BENCHMARK(registration_scaling)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bytes_per_idle_task)->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK_MAIN();
