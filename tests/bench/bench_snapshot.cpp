// SPDX-License-Identifier: Apache-2.0
// Snapshotting many live tasks: 10,000 tasks, each suspended five nodes deep
// (the root and four instrumented awaits), collected and rendered as text;
// what snapshots every millisecond cost tasks running meanwhile; and the
// deadlock finder on 10,000 tasks with two waits each, on top of the snapshot.

#include <await_tree/await_tree.hpp>

#include "compare.hpp"
#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <vector>

namespace {

using await_tree::instrument;

rt::task<> nested(rt::event& gate, int depth) {
  if (depth == 0) {
    co_await instrument(gate.wait(), "wait for the gate");
  } else {
    co_await instrument(nested(gate, depth - 1), "level");
  }
}

template <class Rooted>
rt::task<> drive(Rooted rooted) {
  co_await std::move(rooted);
}

/// `count` registered tasks, each suspended five nodes deep until destroyed.
class idle_tasks {
 public:
  idle_tasks(await_tree::registry& reg, int count) {
    running_.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      running_.push_back(drive(reg.register_task(i, "task").instrument(nested(gate_, 3))));
      running_.back().start();
    }
  }
  idle_tasks(const idle_tasks&) = delete;
  idle_tasks& operator=(const idle_tasks&) = delete;
  ~idle_tasks() { gate_.set(); }

 private:
  rt::event gate_;
  std::vector<rt::task<>> running_;
};

void snapshot_10k_tasks(benchmark::State& state) {
  constexpr int tasks = 10'000;
  await_tree::registry reg;
  const idle_tasks idle(reg, tasks);
  std::size_t nodes = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    nodes = 0;
    bytes = 0;
    for (const auto& [key, tree] : reg.collect_all()) {
      nodes += tree.active_node_count();
      bytes += tree.to_string().size();
    }
  }
  state.counters["tasks"] = tasks;
  state.counters["nodes"] = static_cast<double>(nodes);
  state.counters["text_bytes"] = static_cast<double>(bytes);
}

rt::task<int> ready_child(int i) { co_return i; }

/// Instrumented awaits, two levels deep, until `stop`; counts them.
rt::task<> busy(const std::atomic<bool>& stop, std::atomic<std::size_t>& awaits) {
  std::size_t done = 0;
  int sum = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    sum += co_await instrument(ready_child(sum), "step");
    ++done;
  }
  benchmark::DoNotOptimize(sum);
  awaits.fetch_add(done);
}

/// Awaits per second of two threads, each running a registered `busy` task
/// for `duration`, while a third thread snapshots the registry every
/// millisecond, or not at all.
double awaits_per_second(await_tree::registry& reg, bool snapshotting,
                         std::chrono::milliseconds duration) {
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> awaits{0};
  const auto run_busy_task = [&](int key) {
    rt::task<> t = drive(reg.register_task(key, "busy").instrument(busy(stop, awaits)));
    t.start();
  };
  const auto start = std::chrono::steady_clock::now();
  std::thread first(run_busy_task, -1);
  std::thread second(run_busy_task, -2);
  std::thread snapshotter([&] {
    while (snapshotting && !stop.load()) {
      for (const auto& entry : reg.collect_all())
        benchmark::DoNotOptimize(entry.second.to_string());
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::this_thread::sleep_for(duration);
  stop = true;
  first.join();
  second.join();
  snapshotter.join();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return static_cast<double>(awaits.load()) / elapsed.count();
}

/// The two busy tasks share the registry with 100 idle tasks five nodes deep,
/// so that each snapshot has some work to do.
void throughput_while_snapshotting(benchmark::State& state) {
  await_tree::registry reg;
  const idle_tasks idle(reg, 100);
  constexpr std::chrono::milliseconds duration(100);
  std::vector<double> quiet;
  std::vector<double> snapshotted;
  for (auto _ : state) {
    quiet.push_back(awaits_per_second(reg, false, duration));
    snapshotted.push_back(awaits_per_second(reg, true, duration));
  }
  state.counters["quiet_awaits_per_s"] = bench::median(quiet);
  state.counters["snapshotted_awaits_per_s"] = bench::median(snapshotted);
  state.counters["kept"] = bench::median(snapshotted) / bench::median(quiet);
}

/// Holds its lock, then waits for the next task and for another task's lock
/// until `gate`.
rt::task<> holding_and_waiting(rt::event& gate, await_tree::resource& own, int next,
                               const await_tree::resource& other) {
  own.acquire();
  co_await rt::when_all(
      instrument(gate.wait(), await_tree::span("wait for the next").waits_for(next)),
      instrument(gate.wait(), await_tree::span("wait for a lock").waits_for(other)));
}

/// 10,000 tasks with two waits each (a key and a resource) that make one
/// strongly connected set: the snapshot alone, or the deadlock finder on a
/// snapshot taken beforehand (the target: <= 10 ms on top of it).
void waits_of_10k_tasks(benchmark::State& state, bool analyse) {
  constexpr int tasks = 10'000;
  await_tree::registry reg;
  rt::event gate;
  std::deque<await_tree::resource> locks;
  for (int i = 0; i < tasks; ++i) locks.emplace_back("lock " + std::to_string(i));
  std::vector<rt::task<>> running;
  running.reserve(tasks);
  for (int i = 0; i < tasks; ++i) {
    const auto other = static_cast<std::size_t>((i * 7 + 3) % tasks);
    running.push_back(drive(reg.register_task(i, "task").instrument(holding_and_waiting(
        gate, locks[static_cast<std::size_t>(i)], (i + 1) % tasks, locks[other]))));
    running.back().start();
  }
  const auto snapshot = reg.collect_all();
  std::size_t cycles = 0;
  for (auto _ : state) {
    if (analyse) {
      cycles = await_tree::analyze_waits(snapshot, std::chrono::seconds(10)).cycles.size();
    } else {
      benchmark::DoNotOptimize(reg.collect_all());
    }
  }
  state.counters["tasks"] = tasks;
  state.counters["cycles"] = static_cast<double>(cycles);
  gate.set();
}

void snapshot_10k_tasks_with_waits(benchmark::State& state) { waits_of_10k_tasks(state, false); }
void find_wait_cycles_10k_tasks(benchmark::State& state) { waits_of_10k_tasks(state, true); }

}  // namespace

BENCHMARK(snapshot_10k_tasks)->Unit(benchmark::kMillisecond);
BENCHMARK(snapshot_10k_tasks_with_waits)->Unit(benchmark::kMillisecond);
BENCHMARK(find_wait_cycles_10k_tasks)->Unit(benchmark::kMillisecond);
BENCHMARK(throughput_while_snapshotting)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

BENCHMARK_MAIN();
