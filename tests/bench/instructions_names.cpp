// SPDX-License-Identifier: Apache-2.0
// The ways of naming a node, counted as instructions.cpp counts awaits (a
// program of its own: workloads added to that file's translation unit change
// how GCC inlines the others). "plain" is a literal name, or a child without
// a whole-coroutine span.
//
//   instructions_names WORKLOAD plain|instrumented OPS

#include <await_tree/await_tree.hpp>

#include "named_awaits.hpp"
#include "workload.hpp"

#include <cstdio>

namespace {

using bench::naming;

/// Runs await_named_children<Naming> to completion on this thread, under a
/// registered root.
template <naming Naming>
void run_to_end(std::size_t ops) {
  await_tree::registry reg;
  int sum = 0;
  bench::run_to_end(bench::await_named_children<Naming>(ops, sum), &reg);
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// A short formatted name, or the call site's, instead of a literal
/// ("plain" is the literal).
template <naming Naming>
void named_child_in_task(bool instrumented, std::size_t ops) {
  if (instrumented) {
    run_to_end<Naming>(ops);
  } else {
    run_to_end<naming::literal>(ops);
  }
}

/// A plain await of an integrated child that opens a whole-coroutine span
/// ("plain": the same child without it).
void coroutine_span_call(bool instrumented, std::size_t ops) {
  if (instrumented) {
    run_to_end<naming::coroutine_span>(ops);
  } else {
    run_to_end<naming::none>(ops);
  }
}

constexpr bench::workload workloads[] = {
    {"formatted_name", &named_child_in_task<naming::formatted>},
    {"call_site_name", &named_child_in_task<naming::call_site>},
    {"coroutine_span_call", &coroutine_span_call},
};

}  // namespace

int main(int argc, char** argv) { return bench::run_workload(argc, argv, workloads); }
