// SPDX-License-Identifier: Apache-2.0
// Snapshotting many live tasks: 10,000 tasks, each suspended five nodes deep
// (the root and four instrumented awaits), collected and rendered as text.

#include <await_tree/await_tree.hpp>

#include "runtime/event.hpp"
#include "runtime/task.hpp"

#include <benchmark/benchmark.h>

#include <string>
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

void snapshot_10k_tasks(benchmark::State& state) {
  constexpr int tasks = 10'000;
  await_tree::registry reg;
  rt::event gate;
  std::vector<rt::task<>> running;
  running.reserve(tasks);
  auto drive = [](auto rooted) -> rt::task<> { co_await std::move(rooted); };
  for (int i = 0; i < tasks; ++i) {
    running.push_back(drive(reg.register_task(i, "task").instrument(nested(gate, 3))));
    running.back().start();
  }
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
  gate.set();
}

}  // namespace

BENCHMARK(snapshot_10k_tasks)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
