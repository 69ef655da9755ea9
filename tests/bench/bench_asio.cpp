// SPDX-License-Identifier: Apache-2.0
// The cost of the Asio integration on a single-threaded io_context: an
// instrumented await against the same await plain, inside a traced task; a
// traced task (every handler runs as an activation) against one spawned by
// asio::co_spawn; spawning a registered task against a plain one.

#include <await_tree/asio.hpp>

#include "compare.hpp"

#include <asio.hpp>
#include <benchmark/benchmark.h>

#include <cstddef>
#include <exception>

using await_tree::asio::instrument;

namespace {

asio::awaitable<int> ready(int i) { co_return i; }

asio::awaitable<void> yield() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

/// What any wrapper that must itself be an asio::awaitable costs: one more
/// coroutine frame, no tracing.
asio::awaitable<int> forward(asio::awaitable<int> a, const char* /*label*/) {
  co_return co_await std::move(a);
}

enum class wrapper { none, forward, instrument };

template <wrapper Wrapper>
asio::awaitable<void> await_ready_children(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Wrapper == wrapper::instrument) {
      sum += co_await instrument(ready(static_cast<int>(i)), "child");
    } else if constexpr (Wrapper == wrapper::forward) {
      sum += co_await forward(ready(static_cast<int>(i)), "child");
    } else {
      sum += co_await ready(static_cast<int>(i));
    }
  }
  benchmark::DoNotOptimize(sum);
}

template <bool Instrumented>
asio::awaitable<void> yield_repeatedly(std::size_t ops) {
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      co_await instrument(yield(), "yield");
    } else {
      co_await yield();
    }
  }
}

/// Runs one task to completion, registered (traced) or spawned by Asio alone.
void run(asio::io_context& io, await_tree::registry& reg, asio::awaitable<void> body, bool traced) {
  if (traced) {
    await_tree::asio::co_spawn(io, reg, 0, "bench", std::move(body), asio::detached);
  } else {
    asio::co_spawn(io, std::move(body), asio::detached);
  }
  io.restart();
  io.run();
}

/// An asio::awaitable that completes without suspending, awaited 10,000
/// times in one traced task, bare and through `Wrapper`: instrument() costs
/// that of the wrapper itself; a wrapper that only forwards gives the part of
/// it that is the extra Asio frame, not the tracing.
template <wrapper Wrapper>
void ready_child_in_task(benchmark::State& state) {
  asio::io_context io;
  await_tree::registry reg;
  bench::compare(
      state, 10'000,
      [&](std::size_t ops) { run(io, reg, await_ready_children<wrapper::none>(ops), true); },
      [&](std::size_t ops) { run(io, reg, await_ready_children<Wrapper>(ops), true); });
}

/// An await that suspends and is resumed through the io_context.
void yield_in_task(benchmark::State& state) {
  asio::io_context io;
  await_tree::registry reg;
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run(io, reg, yield_repeatedly<false>(ops), true); },
      [&](std::size_t ops) { run(io, reg, yield_repeatedly<true>(ops), true); });
}

/// The same plain yields in a task of asio::co_spawn and in a traced task:
/// what the task executor costs on every resumption.
void yield_traced_vs_untraced(benchmark::State& state) {
  asio::io_context io;
  await_tree::registry reg;
  bench::compare(
      state, 10'000, [&](std::size_t ops) { run(io, reg, yield_repeatedly<false>(ops), false); },
      [&](std::size_t ops) { run(io, reg, yield_repeatedly<false>(ops), true); });
}

asio::awaitable<void> nothing() { co_return; }

/// Spawning 1,000 tasks that return at once, registered or not.
void spawn_registered_vs_plain(benchmark::State& state) {
  asio::io_context io;
  await_tree::registry reg;
  const auto spawn_all = [&](std::size_t ops, bool traced) {
    for (std::size_t i = 0; i < ops; ++i) {
      if (traced) {
        await_tree::asio::co_spawn(io, reg, i, "task", nothing(), asio::detached);
      } else {
        asio::co_spawn(io, nothing(), asio::detached);
      }
    }
    io.restart();
    io.run();
  };
  bench::compare(
      state, 1'000, [&](std::size_t ops) { spawn_all(ops, false); },
      [&](std::size_t ops) { spawn_all(ops, true); });
}

}  // namespace

BENCHMARK_TEMPLATE(ready_child_in_task, wrapper::instrument)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(ready_child_in_task, wrapper::forward)->Unit(benchmark::kMillisecond);
BENCHMARK(yield_in_task)->Unit(benchmark::kMillisecond);
BENCHMARK(yield_traced_vs_untraced)->Unit(benchmark::kMillisecond);
BENCHMARK(spawn_registered_vs_plain)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
