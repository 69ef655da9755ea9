// SPDX-License-Identifier: Apache-2.0
// Tasks that move between threads and branches that run on several threads
// at once, while another thread snapshots the registry continuously. Run
// under ThreadSanitizer in CI. Assertions stay on the test thread.

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "runtime/thread_pool.hpp"
#include "snapshotter.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace test;
using await_tree::instrument;

namespace {

void busy_for(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

TEST_CASE("(a) a task resumed on other threads keeps its own tree", "[threads]") {
  await_tree::registry reg = manual_registry();
  snapshotter watcher(reg);
  rt::executor ex(true);
  rt::thread_pool pool(2);
  rt::event gate;
  std::atomic<bool> hopped{false};
  std::atomic<bool> finished_on_pool{false};
  auto child = [&]() -> rt::task<> { co_await instrument(gate.wait(), "wait for gate"); };
  auto body = [&]() -> rt::task<> {
    co_await instrument(pool.schedule(), "hop to the pool");
    hopped = pool.on_pool_thread();
    co_await instrument(child(), "child");
    co_await instrument(pool.schedule(), "hop back to the pool");
    co_await instrument(ex.sleep(0ms), "ready at once");
    finished_on_pool = pool.on_pool_thread();
  };
  rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
  ex.run_until(0ms);
  const std::string waiting = "root [0ns]\n  child [0ns]\n    wait for gate [0ns]\n";
  REQUIRE(eventually([&] { return text_of(reg, 0) == waiting; }));
  const long before = watcher.snapshots();
  REQUIRE(eventually([&] { return watcher.snapshots() > before + 10; }));  // while the task lives
  CHECK(hopped);
  gate.set();  // resumes the task inline, here, then it hops away again
  REQUIRE(eventually([&] { return !reg.get(0).has_value(); }));
  CHECK(finished_on_pool);
  CHECK_FALSE(await_tree::current_tree());
  watcher.stop();
  CHECK(watcher.malformed() == 0);
}

TEST_CASE("(e) branches of one task on several threads at once", "[threads]") {
  constexpr int branch_count = 4;
  constexpr int hops = 200;
  await_tree::registry reg = manual_registry();
  snapshotter watcher(reg);
  rt::executor ex(true);
  rt::thread_pool pool(2);
  rt::event gate;
  std::atomic<int> waiting{0};
  auto branch = [&](int i) -> rt::task<> {
    for (int hop = 0; hop < hops; ++hop) {
      co_await instrument(pool.schedule(), "hop");
      busy_for(std::chrono::microseconds(20));
    }
    ++waiting;
    co_await instrument(gate.wait(), fmt::format("branch {} waits", i));
  };
  auto body = [&]() -> rt::task<> {
    co_await instrument(
        rt::when_all(instrument(branch(0), "branch 0"), instrument(branch(1), "branch 1"),
                     instrument(branch(2), "branch 2"), instrument(branch(3), "branch 3")),
        "fan out");
    co_await instrument(ex.sleep(1ms), "after");
  };
  rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
  ex.run_until(0ms);
  REQUIRE(eventually([&] { return waiting.load() == branch_count; }));
  const std::string expected =
      "root [0ns]\n"
      "  fan out [0ns]\n"
      "    branch 0 [0ns]\n"
      "      branch 0 waits [0ns]\n"
      "    branch 1 [0ns]\n"
      "      branch 1 waits [0ns]\n"
      "    branch 2 [0ns]\n"
      "      branch 2 waits [0ns]\n"
      "    branch 3 [0ns]\n"
      "      branch 3 waits [0ns]\n";
  // A branch counts itself before its last await starts: wait for the tree.
  REQUIRE(eventually([&] { return text_of(reg, 0) == expected; }));
  const long before = watcher.snapshots();
  REQUIRE(eventually([&] { return watcher.snapshots() > before + 10; }));  // while the task lives
  gate.set();  // every branch finishes here, the last one resumes the task
  CHECK(text_of(reg, 0) == "root [0ns]\n  after [0ns]\n");
  ex.run();
  CHECK_FALSE(reg.get(0));
  watcher.stop();
  CHECK(watcher.malformed() == 0);
}

TEST_CASE("many tasks hopping between threads, with the executor hook", "[threads][integration]") {
  constexpr int task_count = 16;
  await_tree::registry reg = manual_registry();
  snapshotter watcher(reg);
  rt::executor ex(true);
  rt::thread_pool pool(2, /*with_context_scope=*/true);
  std::atomic<int> done{0};
  auto worker = [&](int id) -> rt::task<> {
    for (int round = 0; round < 50; ++round) {
      co_await pool.schedule();  // plain: the pool's context_scope keeps it exact
      co_await instrument(pool.schedule(), fmt::format("worker {} round {}", id, round));
    }
    ++done;
  };
  for (int id = 0; id < task_count; ++id) {
    rt::spawn(ex, reg.register_task(id, "worker").instrument(worker(id)));
  }
  ex.run_until(0ms);
  REQUIRE(eventually([&] { return done.load() == task_count; }));
  REQUIRE(eventually([&] { return reg.collect_all().empty(); }));
  watcher.stop();
  CHECK(watcher.malformed() == 0);
}

TEST_CASE("a registry destroyed while its tasks run on other threads", "[threads][lifetime]") {
  rt::executor ex(true);
  rt::thread_pool pool(2);
  rt::event gate;
  std::atomic<bool> done{false};
  auto body = [&]() -> rt::task<> {  // outlives its coroutine, unlike the registry
    co_await instrument(pool.schedule(), "to the pool");
    co_await instrument(gate.wait(), "wait");
    co_await instrument(pool.schedule(), "back to the pool");
    done = true;
  };
  {
    await_tree::registry reg = manual_registry();
    rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
    ex.run_until(0ms);
    REQUIRE(eventually([&] { return text_of(reg, 0).find("wait") != std::string::npos; }));
  }
  gate.set();
  REQUIRE(eventually([&] { return done.load(); }));
}

// A pool that notified its workers after releasing its lock could be
// destroyed by a thread that saw the job run while the posting thread was
// still in notify_one (ThreadSanitizer reported it in the stress test).
TEST_CASE("a thread pool destroyed as soon as its last job has run", "[threads][lifetime]") {
  rt::thread_pool from(1);
  for (int round = 0; round < 20; ++round) {
    std::atomic<bool> done{false};
    auto to = std::make_unique<rt::thread_pool>(1);
    [](rt::thread_pool& first, rt::thread_pool& second,
       std::atomic<bool>& flag) -> fire_and_forget {
      co_await first.schedule();
      co_await second.schedule();  // posted from `first`'s thread
      flag = true;
    }(from, *to, done);
    REQUIRE(eventually([&] { return done.load(); }));
    to.reset();
  }
}
