// SPDX-License-Identifier: Apache-2.0
//
// hang_report: what to read when a service with a thousand tasks hangs.
//
// 1,000 simulated connections, 30 s into the run: most idle in a long-running
// read, some stuck in a query on replica 2, a few writing. A grouped dump
// prints each shape of tree once, with its count and min/median/max elapsed
// times (digits masked, so that ids do not split groups). Then a stall
// watchdog, checked every second for 15 s, reports the stuck connection once,
// and not the idle one next to it.
//
// Time is the runtime's manual clock, so the run takes no real time and its
// output is the same on every machine (the README quotes it).
//
// Usage: hang_report [--fast]   (accepted for uniformity; the clock is manual)

#include <await_tree/await_tree.hpp>

#include "connection_service.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace {

using namespace std::chrono_literals;

void grouped_dump(example::connection_service& s, await_tree::registry& reg) {
  for (int id = 0; id < 1000; ++id) s.open(reg, id);
  s.ex.run_until(30s);
  std::puts("--- 1,000 connections after 30 s, grouped ---");
  await_tree::dump(
      stdout,
      {.source = reg, .grouped = true, .grouping = {.normalize = &await_tree::mask_digits}});
  std::putchar('\n');
}

void watched(example::connection_service& s, await_tree::registry& reg) {
  s.open(reg, 0);   // idle in a long-running read: never reported
  s.open(reg, 13);  // stuck on replica 2: reported once
  std::puts("--- a watchdog checking every second for 15 s ---");
  // Checked by hand below (interval 0: no thread), reporting to stdout.
  await_tree::watchdog dog(
      {.source = reg, .interval = 0ms, .on_stall = [](const await_tree::stall& s) {
         await_tree::print_stall(s, stdout);
       }});
  for (auto t = 1s; t <= 15s; t += 1s) {
    s.ex.run_until(t);
    dog.check();
  }
}

/// Runs `story` on a fresh manual clock, then lets every connection finish.
template <class Story>
void run(Story story) {
  rt::manual_clock::set(0ns);
  await_tree::registry reg({.clock = &rt::manual_clock::now});
  rt::executor ex(true);
  rt::event never;
  example::connection_service s{ex, never, 20s};
  story(s, reg);
  never.set();
  ex.run();
}

}  // namespace

int main() {
  run(grouped_dump);
  run(watched);
  return 0;
}
