// SPDX-License-Identifier: Apache-2.0
//
// timeout: a request handler races a query against a timer. When the timer
// wins, the select is gone but the query is not: its node is shown detached
// while the handler logs a warning, then re-attached (the same node, not a
// copy) when the handler goes back to waiting for it. The trees are printed
// before the timeout, right after it, after the query is awaited again, and
// at the end.
//
// Usage: timeout [--fast]   (--fast: on the runtime's manual clock, in no real time)

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
using std::chrono::nanoseconds;

struct service {
  rt::executor& ex;
  nanoseconds second;

  rt::task<std::string> query() {
    co_await instrument(ex.sleep(3 * second), "fetch rows from replica 2");
    co_return "42 rows";
  }

  rt::task<> handle() {
    auto pending = instrument(query(), "query");
    const std::size_t winner = co_await instrument(
        rt::when_any(pending, instrument(ex.sleep(second), "timeout 1s")), "query with timeout");
    if (winner == 1) {
      std::puts("warning: query timed out after 1 s; still waiting for it");
      co_await instrument(ex.sleep(second / 2), "log slow query");
      const std::string rows = co_await pending;  // the same query, awaited again
      std::printf("query done late: %s\n", rows.c_str());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const example::story_clock clock(argc, argv);
  const nanoseconds second = std::chrono::seconds(1);

  await_tree::registry reg(clock.config());
  rt::executor ex(clock.manual);
  service s{ex, second};
  rt::spawn(ex,
            reg.register_task(std::string("request 7"), "handle request 7").instrument(s.handle()));

  // Checkpoints at fixed times from the start, so that however long printing
  // takes (a slow, sanitized build), no timer due later fires before them.
  // The start is once the handler has set its timers: however late a loaded
  // machine lets it begin, they are due at the same times from there.
  ex.step();
  const nanoseconds start = ex.now();
  ex.run_until(start + second / 2);
  example::print_trees(reg, "0.5 s: the query races the timer");
  ex.run_until(start + 5 * second / 4);
  example::print_trees(reg, "1.25 s: timed out; the query is detached while the warning is logged");
  ex.run_until(start + 2 * second);
  example::print_trees(reg, "2 s: awaited again; the same query node is back under the root");
  ex.run();
  example::print_trees(reg, "done: nothing left");
}
