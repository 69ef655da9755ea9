// SPDX-License-Identifier: Apache-2.0
//
// basic: the await-tree of one task.
//
// `foo` joins `bar(4)` and `baz(2)` and keeps a heartbeat; `bar` awaits `baz`
// under "baz in bar"; `baz` works for N seconds under a dynamic span. The tree
// is printed after 1 s (every branch pending) and after 3 s (baz(2) done).
// Spans pending longer than the threshold (2 s here) are flagged `!!!`, except
// the long-running heartbeat. The same task also runs under a second registry
// with `config::verbose` set, where the verbose "sleep" spans show up.
//
// Usage: basic [--fast]   (--fast: on the runtime's manual clock, in no real time)

#include <await_tree/await_tree.hpp>

#include "example.hpp"
#include "runtime/combinators.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace {

using namespace std::chrono_literals;
using await_tree::instrument;
using await_tree::span;
using std::chrono::nanoseconds;

struct story {
  rt::executor& ex;
  nanoseconds second;

  rt::task<> baz(int seconds) {
    co_await instrument(instrument(ex.sleep(seconds * second), span("sleep").verbose()),
                        fmt::format("working in baz {}", seconds));
  }

  rt::task<> bar(int seconds) { co_await instrument(baz(seconds), "baz in bar"); }

  rt::task<> heartbeat() {
    for (int beat = 0; beat < 8; ++beat) co_await ex.sleep(second / 2);
  }

  rt::task<> foo() {
    co_await instrument(rt::when_all(instrument(bar(4), "bar"), instrument(baz(2), "baz"),
                                     instrument(heartbeat(), span("heartbeat").long_running())),
                        "join");
  }
};

}  // namespace

int main(int argc, char** argv) {
  const example::story_clock clock(argc, argv);
  const nanoseconds second = 1s;

  const auto settings = [&](bool verbose) {
    return clock.config({.verbose = verbose, .long_running_threshold = 2 * second});
  };
  await_tree::registry reg(settings(false));
  await_tree::registry verbose_reg(settings(true));
  rt::executor ex(clock.manual);
  story s{ex, second};
  rt::spawn(ex, reg.register_task(std::string("foo"), "foo").instrument(s.foo()));
  rt::spawn(ex, verbose_reg.register_task(std::string("foo (verbose)"), "foo").instrument(s.foo()));

  // Checkpoints at fixed times from the start: time spent printing does not
  // move them.
  ex.step();  // both tasks start and set their timers: the times count from here
  ex.step();
  const nanoseconds start = ex.now();
  ex.run_until(start + second);
  example::print_trees(reg, "after 1 s: every branch pending");
  ex.run_until(start + 3 * second);
  example::print_trees(reg, "after 3 s: baz(2) is done, bar(4) is not");
  example::print_trees(verbose_reg, "the same, with config.verbose = true");
  ex.run();
  std::printf("--- finished: %zu task(s) left ---\n",
              reg.collect_all().size() + verbose_reg.collect_all().size());
}
