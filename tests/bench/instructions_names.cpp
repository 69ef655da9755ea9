// SPDX-License-Identifier: Apache-2.0
// The ways of naming a node, counted as instructions.cpp counts awaits (a
// program of its own: workloads added to that file's translation unit change
// how GCC inlines the others). "plain" is a literal name, or a child without
// a whole-coroutine span.
//
//   instructions_names WORKLOAD plain|instrumented OPS

#include <await_tree/await_tree.hpp>

#include "runtime/task.hpp"
#include "workload.hpp"

#include <cstdio>

using await_tree::instrument;

namespace {

/// Completes at once (as instructions.cpp's, which the literal row matches).
rt::task<int> ready_child(int i) { co_return i; }

/// Runs `body` to completion on this thread, under a registered root.
void run_to_end(rt::task<> body, await_tree::registry& reg) {
  auto drive = [](auto awaitable) -> rt::plain_task<> { co_await std::move(awaitable); };
  rt::plain_task<> root = drive(reg.register_task(0, "bench").instrument(std::move(body)));
  root.start();
}

enum class naming { literal, formatted, call_site };

/// Awaits a child that completes at once, `ops` times, in an integrated
/// coroutine, the node named by a literal or as `Naming` says.
template <naming Naming>
rt::task<> await_named_children(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    const int n = static_cast<int>(i);
    if constexpr (Naming == naming::literal) {
      sum += co_await instrument(ready_child(n), "child");
    } else if constexpr (Naming == naming::formatted) {
      sum += co_await instrument(ready_child(n), "child {}", n);
    } else {
      sum += co_await instrument(ready_child(n));
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// A short formatted name, or the call site's, instead of a
/// literal ("plain" is the literal).
template <naming Naming>
void named_child_in_task(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    run_to_end(await_named_children<Naming>(ops), reg);
  } else {
    run_to_end(await_named_children<naming::literal>(ops), reg);
  }
}

rt::task<int> child_with_span(int i) {
  auto scope = co_await await_tree::coroutine_span();
  co_return i;
}

template <bool WithSpan>
rt::task<> await_children_with_spans(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (WithSpan) {
      sum += co_await child_with_span(static_cast<int>(i));
    } else {
      sum += co_await ready_child(static_cast<int>(i));
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// A plain await of an integrated child that opens a whole-coroutine
/// span ("plain": the same child without it).
void coroutine_span_call(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    run_to_end(await_children_with_spans<true>(ops), reg);
  } else {
    run_to_end(await_children_with_spans<false>(ops), reg);
  }
}

constexpr bench::workload workloads[] = {
    {"formatted_name", &named_child_in_task<naming::formatted>},
    {"call_site_name", &named_child_in_task<naming::call_site>},
    {"coroutine_span_call", &coroutine_span_call},
};

}  // namespace

int main(int argc, char** argv) { return bench::run_workload(argc, argv, workloads); }
