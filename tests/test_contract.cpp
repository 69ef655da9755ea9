// SPDX-License-Identifier: Apache-2.0
// The context contract on the control flows that once put nodes in the wrong
// task's tree, each run twice: on the examples' integrated task type, where
// every tree must be exact, and on the same task type without integration,
// where a tree may show less but never a node of another task, nor one
// under a node that is not its ancestor.

#include "integration_modes.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"
#include "runtime/thread_pool.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>

using namespace test;
using await_tree::instrument;

TEMPLATE_TEST_CASE("a task that wakes another's branch inline keeps its own nodes", "[contract]",
                   integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  rt::executor ex(true);
  rt::event ev;
  auto joiner = [&]() -> task {
    co_await instrument(TestType::when_all(instrument(ev.wait(), "j waits"),
                                           instrument(ex.sleep(10ms), "j sleeps")),
                        "join");
  };
  auto setter = [&]() -> task {
    co_await instrument(ex.sleep(1ms), "s first");
    ev.set();  // resumes the joiner's branch on this thread
    co_await instrument(ex.sleep(1ms), "s second");
  };
  rt::spawn(ex, reg.register_task(std::string("j"), "joiner").instrument(joiner()));
  rt::spawn(ex, reg.register_task(std::string("s"), "setter").instrument(setter()));
  ex.run_until(1ms);
  const std::string joiner_names = names_of(reg.get(std::string("j")));
  const std::string setter_names = names_of(reg.get(std::string("s")));
  if constexpr (TestType::exact) {
    CHECK(joiner_names == "joiner\n  join\n    j sleeps\n");
    CHECK(setter_names == "setter\n  s second\n");
  } else {
    // Without integration no coroutine's node is shown (none can be told
    // apart from another task's, see context.hpp): never one elsewhere.
    CHECK(joiner_names == "joiner\n");
    CHECK(setter_names == "setter\n");
  }
  ex.run();
}

TEMPLATE_TEST_CASE("code run after a task suspended at a plain await is not in that task",
                   "[contract]", integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  rt::executor ex(true);
  rt::event ev;
  auto registered = [&]() -> task {
    co_await instrument(ex.sleep(1ms), "t sleeps");
    co_await ev.wait();  // plain: the thread moves on
  };
  auto foreign = [&]() -> task { co_await instrument(ex.sleep(1ms), "foreign"); };
  rt::spawn(ex, reg.register_task(0, "task").instrument(registered()));
  ex.run_until(1ms);
  rt::spawn(ex, foreign());
  ex.step();
  CHECK(names_of(reg.get(0)) == "task\n");
  ev.set();
  ex.run();
}

TEMPLATE_TEST_CASE("a join of plain yields shows its branches side by side", "[contract]",
                   integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  rt::executor ex(true);
  auto fut1 = [&]() -> task { co_await ex.yield(); };
  auto fut2 = [&]() -> task {
    co_await ex.yield();
    co_await ex.yield();
  };
  auto body = [&]() -> task {
    for (int i = 0; i < 3; ++i) {
      co_await instrument(
          TestType::when_all(instrument(fut1(), "fut1"), instrument(fut2(), "fut2")), "join");
    }
  };
  rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
  ex.step();  // starts the task: both branches wait in their first yield
  if constexpr (TestType::exact) {
    CHECK(names_of(reg.get(0)) == "root\n  join\n    fut1\n    fut2\n");
  }
  for (int step = 0; ex.step(); ++step) {
    const std::string names = names_of(reg.get(0));
    INFO("after step " << step << ":\n" << names);
    CHECK(names.find("fut1\n      fut2") == std::string::npos);  // never one under the other
    CHECK(names.find("[Detached") == std::string::npos);
  }
  CHECK_FALSE(reg.get(0));
}

TEMPLATE_TEST_CASE("a thread that woke a task from outside any task stays outside", "[contract]",
                   integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  rt::executor ex(true);
  rt::event ev;
  auto body = [&]() -> task {
    co_await instrument(TestType::when_all(instrument(ev.wait(), "branch"), ex.sleep(5ms)), "join");
  };
  rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
  ex.run_until(0ms);
  ev.set();  // from outside any task: resumes the branch here
  CHECK_FALSE(await_tree::current_tree());
  auto outside = [&]() -> task { co_await instrument(ex.sleep(1ms), "outside"); };
  rt::spawn(ex, outside());
  ex.run_until(1ms);
  CHECK(names_of(reg.get(0)) == (TestType::exact ? "root\n  join\n" : "root\n"));
  ex.run();
}

TEST_CASE("eager work started inline by an integrated task is in its tree", "[contract]") {
  single_task s;
  rt::event ev;
  auto body = [&]() -> rt::task<> {
    [&]() -> fire_and_forget { co_await instrument(ev.wait(), "spawned work"); }();
    co_await instrument(s.ex.sleep(1ms), "after spawning");
  };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() ==
        "root [0ns]\n"
        "  spawned work [0ns]\n"
        "  after spawning [0ns]\n");
  ev.set();
  CHECK(s.finishes());
}
