// SPDX-License-Identifier: Apache-2.0
#pragma once

// Side-by-side measurement: each benchmark iteration times one batch of the
// plain workload and one of the instrumented workload, alternately, so that
// both see the same machine state; the medians and their ratio are reported
// as counters (plain_ns, instrumented_ns per operation, ratio).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace bench {

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

/// Nanoseconds per operation of one call of `batch`, which runs `ops` of them.
template <class Batch>
double time_batch(Batch& batch, std::size_t ops) {
  const auto start = std::chrono::steady_clock::now();
  batch(ops);
  const auto end = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(end - start).count() / static_cast<double>(ops);
}

template <class Plain, class Instrumented>
void compare(benchmark::State& state, std::size_t ops, Plain plain, Instrumented instrumented) {
  std::vector<double> plain_ns;
  std::vector<double> instrumented_ns;
  for (auto _ : state) {
    plain_ns.push_back(time_batch(plain, ops));
    instrumented_ns.push_back(time_batch(instrumented, ops));
  }
  const double p = median(plain_ns);
  const double q = median(instrumented_ns);
  state.counters["plain_ns"] = p;
  state.counters["instrumented_ns"] = q;
  state.counters["ratio"] = p > 0 ? q / p : 0;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops * 2));
}

}  // namespace bench
