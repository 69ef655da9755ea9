// SPDX-License-Identifier: Apache-2.0
// The Rust crate's functionality test, ported, and the semantics around it:
// cancellation, exceptions, re-awaiting, verbose spans. Everything runs on the
// deterministic executor and manual clock, with a snapshot between steps.

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace test;
using await_tree::instrument;
using std::chrono::milliseconds;

namespace {

// The Rust test's sleeps are plain awaits inside instrumented futures; here
// the tasks adopt the promise mixin, which keeps such awaits exact.
template <class T = void>
using traced_task = rt::basic_task<T, await_tree::promise_mixin>;

struct counts {
  std::size_t active;
  std::size_t detached;
  friend bool operator==(counts, counts) = default;
  friend std::ostream& operator<<(std::ostream& os, counts c) {
    return os << "{active " << c.active << ", detached " << c.detached << "}";
  }
};

counts counts_of(const await_tree::registry& reg) {
  const auto t = reg.get(0);
  return t ? counts{t->active_node_count(), t->detached_node_count()} : counts{0, 0};
}

/// A source of items at a fixed period in absolute time: a cancelled next()
/// does not lose the schedule, as with a Rust stream that keeps its future.
class ticker {
 public:
  ticker(rt::executor& ex, milliseconds period, int items)
      : ex_(ex), period_(period), next_due_(ex.now() + period), remaining_(items) {}

  traced_task<> next() {
    if (remaining_ == 0) co_return;
    co_await ex_.sleep(next_due_ - ex_.now());
    next_due_ += period_;
    --remaining_;
  }
  [[nodiscard]] bool exhausted() const noexcept { return remaining_ == 0; }

 private:
  rt::executor& ex_;
  milliseconds period_;
  std::chrono::nanoseconds next_due_;
  int remaining_;
};

struct rust_port {
  rt::executor& ex;

  traced_task<> sleep(int ms) { co_await ex.sleep(milliseconds(ms)); }

  traced_task<> sleep_nested() {
    co_await rt::when_all(instrument(sleep(1500), "sleep nested 1500"),
                          instrument(sleep(2500), "sleep nested 2500"));
  }

  traced_task<> multi_sleep() {
    co_await sleep(400);
    co_await instrument(sleep(800), "sleep another in multi sleep");
  }

  traced_task<> streams() {
    ticker stream1(ex, milliseconds(150), 100);
    ticker stream2(ex, milliseconds(200), 3);
    for (int count = 0; !stream2.exhausted(); ++count) {
      co_await rt::when_any(instrument(stream1.next(), fmt::format("stream1 next {}", count)),
                            instrument(stream2.next(), fmt::format("stream2 next {}", count)));
      co_await instrument(sleep(50), fmt::format("sleep {}", count));
    }
  }

  traced_task<> hello() {
    co_await instrument(rt::when_all(instrument(sleep(1000), fmt::format("sleep {}", 1000)),
                                     instrument(sleep(2000), "sleep 2000"),
                                     instrument(sleep_nested(), "sleep nested"),
                                     instrument(multi_sleep(), "multi sleep")),
                        "join");
    co_await instrument(
        rt::when_all(instrument(sleep(1200), "sleep 1200"), instrument(sleep(2200), "sleep 2200")),
        "join again");
    co_await instrument(
        rt::when_any(instrument(sleep(666), "sleep 666"),
                     instrument(sleep_nested(), "sleep nested (should be cancelled)")),
        "select");
    co_await instrument(sleep(233), "sleep 233");  // check whether cleaned up
    co_await instrument(streams(), "streams");
    co_await instrument(sleep(233), "sleep 233");  // check whether cleaned up
  }
};

}  // namespace

TEST_CASE("port of the Rust crate's functionality test", "[scenario]") {
  single_task t;
  rust_port port{t.ex};
  auto hello = [&]() -> traced_task<> { co_await instrument(port.hello(), "hello"); };
  t.spawn(hello());

  const auto at = [&](int ms) {
    t.ex.run_until(milliseconds(ms));
    return counts_of(t.reg);
  };

  CHECK(at(0) == counts{9, 0});
  CHECK(t.text() ==
        "root [0ns]\n"
        "  hello [0ns]\n"
        "    join [0ns]\n"
        "      sleep 1000 [0ns]\n"
        "      sleep 2000 [0ns]\n"
        "      sleep nested [0ns]\n"
        "        sleep nested 1500 [0ns]\n"
        "        sleep nested 2500 [0ns]\n"
        "      multi sleep [0ns]\n");
  CHECK(at(400) == counts{10, 0});  // multi sleep's second sleep started
  CHECK(t.text().find("      multi sleep [400.000ms]\n"
                      "        sleep another in multi sleep [0ns]\n") != std::string::npos);
  CHECK(at(1000) == counts{9, 0});
  CHECK(at(1200) == counts{7, 0});
  CHECK(at(1500) == counts{6, 0});
  CHECK(at(2000) == counts{5, 0});
  CHECK(at(2500) == counts{5, 0});  // join done, join again started
  CHECK(t.text() ==
        "root [2.500s]\n"
        "  hello [2.500s]\n"
        "    join again [0ns]\n"
        "      sleep 1200 [0ns]\n"
        "      sleep 2200 [0ns]\n");
  CHECK(at(3700) == counts{4, 0});
  CHECK(at(4700) == counts{7, 0});  // select started
  CHECK(t.text() ==
        "root [4.700s]\n"
        "  hello [4.700s]\n"
        "    select [0ns]\n"
        "      sleep 666 [0ns]\n"
        "      sleep nested (should be cancelled) [0ns]\n"
        "        sleep nested 1500 [0ns]\n"
        "        sleep nested 2500 [0ns]\n");
  // The select is over: the cancelled branch left nothing behind.
  CHECK(at(5366) == counts{3, 0});
  CHECK(t.text() ==
        "root [5.366s]\n"
        "  hello [5.366s]\n"
        "    sleep 233 [0ns]\n");
  // Streams: every round removes the loser's node and adds a sleep.
  CHECK(at(5599) == counts{5, 0});
  CHECK(t.text() ==
        "root [5.599s]\n"
        "  hello [5.599s]\n"
        "    streams [0ns]\n"
        "      stream1 next 0 [0ns]\n"
        "      stream2 next 0 [0ns]\n");
  CHECK(at(5749) == counts{4, 0});  // stream1 won round 0; sleep 0
  CHECK(t.text().find("      sleep 0 [0ns]\n") != std::string::npos);
  t.ex.run_until(milliseconds(6300));
  CHECK(counts_of(t.reg) == counts{3, 0});  // streams over: back to one sleep
  CHECK(t.text().find("sleep 233") != std::string::npos);
  t.ex.run();
  CHECK(counts_of(t.reg) == counts{0, 0});
  CHECK(t.reg.collect_all().empty());
}

namespace {

rt::task<> wait_for(rt::event& e, await_tree::span label) {
  co_await instrument(e.wait(), std::move(label));
}

}  // namespace

TEST_CASE("destroying a suspended frame removes its nodes", "[scenario][cancel]") {
  await_tree::registry reg = manual_registry();
  rt::event never;
  auto outer = [&]() -> rt::task<> {
    co_await instrument(instrument(wait_for(never, "inner wait"), "child"), "outer");
  };
  auto drive = [](auto rooted) -> rt::task<> { co_await std::move(rooted); };
  std::optional<rt::task<>> task(drive(reg.register_task(0, "root").instrument(outer())));
  task->start();
  CHECK(text_of(reg, 0) ==
        "root [0ns]\n"
        "  outer [0ns]\n"
        "    child [0ns]\n"
        "      inner wait [0ns]\n");
  task.reset();  // destroys the whole chain of suspended frames
  CHECK_FALSE(reg.get(0));
  CHECK_FALSE(await_tree::current_tree());
}

// Regression: set() used to resume every waiter it had collected, including
// one that an earlier waiter had cancelled meanwhile (use after free, seen
// by ASan).
TEST_CASE("an event resumes no waiter that an earlier one cancelled", "[scenario][cancel]") {
  single_task t;
  rt::event both;
  auto body = [&]() -> rt::task<> {
    co_await instrument(rt::when_any(wait_for(both, "first"), wait_for(both, "second")), "select");
  };
  t.spawn(body());
  t.ex.run();
  CHECK(t.text() ==
        "root [0ns]\n"
        "  select [0ns]\n"
        "    first [0ns]\n"
        "    second [0ns]\n");
  both.set();
  CHECK(t.finishes());
}

TEST_CASE("a when_any loser is cancelled and its nodes go with it", "[scenario][cancel]") {
  single_task t;
  rt::event never;
  auto body = [&]() -> rt::task<> {
    co_await instrument(rt::when_any(instrument(t.ex.sleep(10ms), "timer"),
                                     instrument(wait_for(never, "never set"), "loser")),
                        "select");
    co_await instrument(t.ex.sleep(10ms), "after");
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(t.text() ==
        "root [0ns]\n"
        "  select [0ns]\n"
        "    timer [0ns]\n"
        "    loser [0ns]\n"
        "      never set [0ns]\n");
  t.ex.run_until(10ms);
  CHECK(t.text() == "root [10.000ms]\n  after [0ns]\n");
  CHECK(t.finishes());
}

TEST_CASE("exceptions pass through instrumented awaits and remove their nodes",
          "[scenario][exception]") {
  single_task t;
  std::string caught;
  std::optional<await_tree::tree> tree_in_catch;
  auto failing = [&]() -> rt::task<int> {
    co_await instrument(t.ex.sleep(1ms), "before failing");
    throw std::runtime_error("boom");
  };
  auto body = [&]() -> rt::task<> {
    try {
      co_await instrument(instrument(failing(), "inner"), "outer");
    } catch (const std::runtime_error& e) {
      caught = e.what();
      tree_in_catch = await_tree::current_tree();
    }
    co_await instrument(t.ex.sleep(1ms), "after the catch");
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(t.text() == "root [0ns]\n  outer [0ns]\n    inner [0ns]\n      before failing [0ns]\n");
  t.ex.run_until(1ms);
  CHECK(caught == "boom");
  REQUIRE(tree_in_catch);
  CHECK(tree_in_catch->to_string() == "root [1.000ms]\n");
  CHECK(t.text() == "root [1.000ms]\n  after the catch [0ns]\n");
  CHECK(t.finishes());
}

TEST_CASE("an await_suspend that throws leaves no node behind", "[scenario][exception]") {
  single_task t;
  bool caught = false;
  auto body = [&]() -> rt::task<> {
    try {
      co_await instrument(throwing_suspend{}, "throws in await_suspend");
    } catch (const std::runtime_error&) {
      caught = true;
    }
    co_await instrument(t.ex.sleep(1ms), "next");
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(caught);
  CHECK(t.text() == "root [0ns]\n  next [0ns]\n");
  t.ex.run();
}

TEST_CASE("an abandoned awaitable awaited again is re-attached, never duplicated",
          "[scenario][reattach]") {
  single_task t;
  rt::event data;
  auto query = [&]() -> rt::task<> { co_await instrument(data.wait(), "wait for data"); };
  auto handle = [&]() -> rt::task<> {
    auto q = instrument(query(), "query");
    const std::size_t winner =
        co_await instrument(rt::when_any(q, instrument(t.ex.sleep(10ms), "timeout")), "select");
    CHECK(winner == 1);
    co_await instrument(t.ex.sleep(5ms), "log warning");
    co_await q;  // keep waiting for the same query
  };
  t.spawn(handle());
  t.ex.run_until(0ms);
  CHECK(t.text() ==
        "root [0ns]\n"
        "  select [0ns]\n"
        "    query [0ns]\n"
        "      wait for data [0ns]\n"
        "    timeout [0ns]\n");
  t.ex.run_until(10ms);  // timeout: the select is gone, the query lives on
  const auto snapshot = t.reg.get(0);
  REQUIRE(snapshot);
  CHECK(snapshot->detached_node_count() == 1);
  CHECK(snapshot->active_node_count() == 4);
  const std::string detached_id = std::to_string(snapshot->nodes()[2].id);
  CHECK(snapshot->to_string() ==
        "root [10.000ms]\n"
        "  log warning [0ns]\n"
        "[Detached " +
            detached_id +
            "]\n"
            "  query [10.000ms]\n"
            "    wait for data [10.000ms]\n");
  t.ex.run_until(15ms);  // awaited again: back under the root, same node
  CHECK(t.text() ==
        "root [15.000ms]\n"
        "  query [15.000ms]\n"
        "    wait for data [15.000ms]\n");
  CHECK(t.reg.get(0)->nodes()[1].id == std::stoul(detached_id));
  data.set();
  CHECK_FALSE(t.reg.get(0));
}

TEST_CASE("an abandoned awaitable whose work finished while detached", "[scenario][reattach]") {
  single_task t;
  rt::event data;
  auto query = [&]() -> rt::task<int> {
    co_await instrument(data.wait(), "wait for data");
    co_return 42;
  };
  int answer = 0;
  auto handle = [&]() -> rt::task<> {
    auto q = instrument(query(), "query");
    co_await instrument(rt::when_any(q, instrument(t.ex.sleep(10ms), "timeout")), "select");
    co_await instrument(t.ex.sleep(5ms), "meanwhile");
    answer = co_await q;  // already done: no suspension
    co_await instrument(t.ex.sleep(1ms), "end");
  };
  t.spawn(handle());
  t.ex.run_until(12ms);
  {
    // The query runs to its end with nobody awaiting it: it leaves through no
    // instrumented await, so only a scope (the executor hook) ends its
    // activation exactly.
    const await_tree::context_scope scope{await_tree::task_context{}};
    data.set();
  }
  // Its node stays, detached, until the awaitable is awaited again.
  const auto snapshot = t.reg.get(0);
  REQUIRE(snapshot);
  CHECK(snapshot->to_string() ==
        "root [12.000ms]\n"
        "  meanwhile [2.000ms]\n"
        "[Detached " +
            std::to_string(snapshot->nodes()[2].id) +
            "]\n"
            "  query [12.000ms]\n");
  t.ex.run_until(15ms);
  CHECK(answer == 42);
  CHECK(t.text() == "root [15.000ms]\n  end [0ns]\n");
  CHECK(t.finishes());
}

TEST_CASE("verbose spans are recorded only when the registry asks for them",
          "[scenario][verbose]") {
  for (const bool verbose : {false, true}) {
    await_tree::registry reg = manual_registry(verbose);
    rt::executor ex(true);
    auto body = [&]() -> rt::task<> {
      co_await instrument(instrument(ex.sleep(1ms), "inner"), await_tree::span("detail").verbose());
      co_await instrument(ex.sleep(1ms), "after");
    };
    rt::spawn(ex, reg.register_task(0, "root").instrument(body()));
    ex.run_until(0ms);
    CHECK(text_of(reg, 0) == (verbose ? "root [0ns]\n  detail [0ns]\n    inner [0ns]\n"
                                      : "root [0ns]\n  inner [0ns]\n"));
    ex.run_until(1ms);
    CHECK(text_of(reg, 0) == "root [1.000ms]\n  after [0ns]\n");
    ex.run();
    CHECK_FALSE(reg.get(0));
  }
}

TEST_CASE("awaits that complete without a hand-off leave the tree as it was", "[scenario]") {
  single_task t;
  auto body = [&]() -> rt::task<> {
    for (int i = 0; i < 3; ++i) co_await instrument(bounce{}, "bounce");
    co_await instrument(std::suspend_never{}, "ready at once");
    co_await instrument(t.ex.sleep(1ms), "sleep");
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(t.text() == "root [0ns]\n  sleep [0ns]\n");
  t.ex.run();
}

TEST_CASE("dynamic span names are built with fmt", "[scenario]") {
  single_task t;
  auto body = [&]() -> rt::task<> {
    for (int block = 1; block <= 2; ++block) {
      co_await instrument(t.ex.sleep(1ms), fmt::format("read block {}", block));
    }
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(t.text() == "root [0ns]\n  read block 1 [0ns]\n");
  t.ex.run_until(1ms);
  CHECK(t.text() == "root [1.000ms]\n  read block 2 [0ns]\n");
  t.ex.run();
}

TEST_CASE("a snapshot taken inside the task marks where it runs", "[scenario][current]") {
  single_task t;
  std::optional<await_tree::tree> seen;
  auto inner = [&]() -> rt::task<> {
    seen = await_tree::current_tree();
    co_await instrument(t.ex.sleep(1ms), "sleep");
  };
  auto body = [&]() -> rt::task<> { co_await instrument(inner(), "outer"); };
  t.spawn(body());
  t.ex.run_until(0ms);
  REQUIRE(seen);
  CHECK(seen->to_string() == "root [0ns]\n  outer [0ns]  <== current\n");
  const std::uint32_t outer_id = seen->nodes()[1].id;
  CHECK(seen->current_id() == outer_id);
  CHECK(seen->to_json().find(fmt::format(R"("current_ids":[{}])", outer_id)) != std::string::npos);
  // Suspended: nothing is current, and JSON points at the root.
  const auto now = t.reg.get(0);
  REQUIRE(now);
  CHECK(now->to_string() == "root [0ns]\n  outer [0ns]\n    sleep [0ns]\n");
  CHECK(now->current_id() == now->nodes()[0].id);
  t.ex.run();
}
