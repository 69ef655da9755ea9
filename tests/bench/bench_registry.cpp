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
#include <cstdint>
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
///
/// Every thread registers for the same window and counts what it did, and
/// the rate is their sum over the window. Timed to the last thread's end
/// instead, two threads ran at the pace of the slower core: on a 2-core
/// virtual machine either core alone ran 18 to 34 million registrations a
/// second from one run to the next, and two processes at once 32 and 21.
void registration_scaling(benchmark::State& state) {
  using clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds window{20};
  constexpr int checks_every = 1024;  // registrations between two reads of the clock
  await_tree::registry reg;
  const auto register_until = [&](clock::time_point end, int first_key, bool anonymous) {
    // Each thread registers through a handle of its own, as a server's
    // workers would: read through a reference, `reg` lies in this
    // function's frame, on a line the main thread may write its own locals
    // to, which every registration of the other thread would then read.
    await_tree::registry mine = reg;
    std::int64_t count = 0;
    do {
      for (int i = 0; i < checks_every; ++i, ++count) {
        auto root = anonymous ? mine.register_anonymous("task")
                              : mine.register_task(first_key + static_cast<int>(count), "task");
        benchmark::DoNotOptimize(root);
      }
    } while (clock::now() < end);
    return count;
  };
  const auto per_second = [&](int threads, bool anonymous) {
    const clock::time_point end = clock::now() + window;
    std::vector<std::int64_t> counts(static_cast<std::size_t>(threads));
    std::vector<std::thread> others;
    for (int t = 1; t < threads; ++t) {
      others.emplace_back([&, t] { counts[t] = register_until(end, t << 24, anonymous); });
    }
    counts[0] = register_until(end, 0, anonymous);
    for (std::thread& other : others) other.join();
    std::int64_t total = 0;
    for (const std::int64_t c : counts) total += c;
    return static_cast<double>(total) / std::chrono::duration<double>(window).count();
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
  // Each ratio of rates measured one after the other, then their median: a
  // core's speed changes from run to run, and rates measured side by side
  // share more of the machine's state than the medians of all one-thread
  // and all two-thread rates do.
  const auto median_ratio = [](const std::vector<double>& many, const std::vector<double>& one) {
    std::vector<double> ratios;
    for (std::size_t i = 0; i < many.size(); ++i) ratios.push_back(many[i] / one[i]);
    return bench::median(ratios);
  };
  state.counters["scaling"] = median_ratio(two, one);
  state.counters["scaling_4"] = median_ratio(four, one);
  state.counters["scaling_anonymous"] = median_ratio(two_anonymous, one_anonymous);
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
