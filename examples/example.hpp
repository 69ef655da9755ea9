// SPDX-License-Identifier: Apache-2.0
#pragma once

// What every example shares: how long a "second" of its story lasts, how it
// prints the trees at each checkpoint, and, for the stories that get stuck, how
// a run is watched for progress and how its stuck tasks are stopped.

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace example {

/// Whether the example runs with `--fast`, as CTest runs it.
inline bool fast(int argc, char** argv) {
  return argc > 1 && std::string_view(argv[1]) == "--fast";
}

/// One second, or 10 ms with `--fast`.
inline std::chrono::nanoseconds second(int argc, char** argv) {
  using namespace std::chrono_literals;
  return fast(argc, argv) ? std::chrono::nanoseconds(10ms) : std::chrono::nanoseconds(1s);
}

/// How a timed story keeps time. For a reader, real time; with `--fast` (as
/// CTest runs it), the runtime's manual clock, which jumps from one timer to
/// the next: the story then takes no real time, prints the durations a reader
/// sees, and no loaded machine can move an event past a checkpoint.
struct story_clock {
  bool manual;

  story_clock(int argc, char** argv) : manual(fast(argc, argv)) {}

  /// A registry's config reading this clock.
  [[nodiscard]] await_tree::config config(await_tree::config c = {}) const {
    if (manual) c.clock = &rt::manual_clock::now;
    return c;
  }
};

/// Every tree of `reg`, under a heading that says when it was taken, and a
/// blank line before whatever comes next (nothing for an empty registry).
inline void print_trees(const await_tree::registry& reg, std::string_view when) {
  std::printf("--- %.*s ---\n", static_cast<int>(when.size()), when.data());
  const std::string trees = await_tree::dump_to_string(reg);
  if (!trees.empty()) std::printf("%s\n", trees.c_str());
}

/// Polls `done` (on another thread's progress) for up to `limit`: the
/// examples wait for states, bounded in time.
template <class Condition>
bool within(std::chrono::seconds limit, Condition done) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// rt's task with the promise mixin, which keeps the trees exact at plain
/// (uninstrumented) awaits too.
template <class T = void>
using task = rt::basic_task<T, await_tree::promise_mixin>;

/// Runs `work` until it finishes or `stop` is set, whichever comes first;
/// stopping cancels it. A stuck task is stopped so that its frames are freed.
template <class Awaitable>
rt::task<> until_stopped(Awaitable work, rt::event& stop) {
  co_await await_tree::track(rt::when_any(std::move(work), stop.wait()));
}

/// Runs `ex` for `d`. rt::executor has no await-tree hook (README, "Executor
/// hook"), so a coroutine that ends with nobody awaiting it leaves its task's
/// context on this thread, shown as a stale `<== current`. Running the executor
/// in a scope that belongs to no task drops that context when the run returns.
inline void run_for(rt::executor& ex, std::chrono::nanoseconds d) {
  const await_tree::context_scope outside_any_task{await_tree::task_context{}};
  ex.run_for(d);
}

/// How a watched run ended.
enum class run_end { finished, stalled };

/// When a run counts as stalled: progress is looked at every `tick`, a run
/// that made none for `patience` has stalled, and no run goes on past `limit`.
struct stall_check {
  std::chrono::nanoseconds tick;
  std::chrono::nanoseconds patience;
  std::chrono::nanoseconds limit;
};

/// Runs `ex` until `finished()` holds or the run stalls: `progress()`, a count
/// of completed items, has not moved for `check.patience`.
template <class Finished, class Progress>
run_end run_watched(rt::executor& ex, const stall_check& check, Finished finished,
                    Progress progress) {
  auto last_progress = progress();
  std::chrono::nanoseconds quiet{0};
  for (std::chrono::nanoseconds elapsed{0}; elapsed < check.limit && quiet < check.patience;
       elapsed += check.tick) {
    if (finished()) return run_end::finished;
    run_for(ex, check.tick);
    const auto current_progress = progress();
    quiet = current_progress == last_progress ? quiet + check.tick : std::chrono::nanoseconds{0};
    last_progress = current_progress;
  }
  return finished() ? run_end::finished : run_end::stalled;
}

}  // namespace example
