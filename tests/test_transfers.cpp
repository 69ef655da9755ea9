// SPDX-License-Identifier: Apache-2.0
// The context contract where a symmetric transfer goes to a coroutine the
// await did not start: a scheduler's yield handing the thread to the next
// ready coroutine (of whatever task), a generator coming back by co_yield,
// and a cancelled child whose frame a coroutine outside any task reuses.
// Each once put a node in another task's tree (found by an independent
// probe of the contract, on a runtime of its own). Then a coroutine whose
// exception escapes to whoever resumed it, whose end no await sees either.
// Run on the integrated task type (exact) and, where it applies, on the same
// type without integration (no coroutine's node is shown).

#include "integration_modes.hpp"
#include "owned_coroutine.hpp"
#include "runtime/event.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

using namespace test;
using await_tree::instrument;

namespace {

/// A run queue whose yield hands the thread over, by a symmetric transfer,
/// to the coroutine that has waited longest, of whatever task.
class transfer_queue {
 public:
  struct yield_awaiter {
    transfer_queue& queue;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
      queue.ready_.push_back(h);
      const std::coroutine_handle<> next = queue.ready_.front();
      queue.ready_.pop_front();
      return next;
    }
    void await_resume() const noexcept {}
  };
  struct park_awaiter {
    transfer_queue& queue;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { queue.ready_.push_back(h); }
    void await_resume() const noexcept {}
  };

  yield_awaiter yield() noexcept { return {*this}; }
  park_awaiter park() noexcept { return {*this}; }  // waits in the queue, suspended plainly
  void push(std::coroutine_handle<> h) { ready_.push_back(h); }

  void run() {
    while (!ready_.empty()) {
      const std::coroutine_handle<> next = ready_.front();
      ready_.pop_front();
      next.resume();
    }
  }

 private:
  std::deque<std::coroutine_handle<>> ready_;
};

/// Runs a task's root at once, inline, in a coroutine that frees itself.
template <class Rooted>
void start(Rooted rooted) {
  [](Rooted r) -> fire_and_forget { co_await std::move(r); }(std::move(rooted));
}

std::string names_of_task(const await_tree::registry& reg, const char* key) {
  return names_of(reg.get(std::string(key)));
}

/// The root's name of the calling code's current tree, "<none>" outside
/// any task.
std::string current_root() {
  const auto t = await_tree::current_tree();
  return t ? std::string(t->nodes().front().span.name()) : "<none>";
}

}  // namespace

TEMPLATE_TEST_CASE("a yield that transfers to another task's coroutine keeps each node in its task",
                   "[contract][transfer]", integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  rt::event j_wakes;
  auto waiter = [&]() -> task {
    co_await queue.park();
    co_await instrument(j_wakes.wait(), "j waits");
  };
  auto yielder = [&]() -> task { co_await instrument(queue.yield(), "s yields"); };
  start(reg.register_task(std::string("j"), "j").instrument(waiter()));
  start(reg.register_task(std::string("s"), "s").instrument(yielder()));  // runs j's wait
  CHECK(current_root() == "<none>");
  if constexpr (TestType::exact) {
    CHECK(names_of_task(reg, "j") == "j\n  j waits\n");
    CHECK(names_of_task(reg, "s") == "s\n  s yields\n");
  } else {
    CHECK(names_of_task(reg, "j") == "j\n");
    CHECK(names_of_task(reg, "s") == "s\n");
  }
  queue.run();
  j_wakes.set();
  CHECK_FALSE(reg.get(std::string("j")));
  CHECK_FALSE(reg.get(std::string("s")));
}

TEST_CASE("a task that wakes another inline is current again when the woken chain moves on",
          "[contract][transfer]") {
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  rt::event s_wakes;
  rt::event j_wakes;
  rt::event spawned_wakes;
  rt::event x_wakes;
  std::string current_after_set;
  auto waiter = [&]() -> rt::task<> {
    co_await queue.park();
    co_await instrument(j_wakes.wait(), "j waits");
  };
  auto sleeper = [&]() -> rt::task<> {
    co_await instrument(s_wakes.wait(), "s waits");
    co_await queue.yield();  // plain: transfers to j
  };
  // Its first statement wakes s, before the task has awaited anything.
  auto waker = [&]() -> rt::task<> {
    s_wakes.set();
    current_after_set = current_root();
    [&]() -> fire_and_forget { co_await instrument(spawned_wakes.wait(), "x spawned"); }();
    co_await instrument(x_wakes.wait(), "x waits");
  };
  start(reg.register_task(std::string("j"), "j").instrument(waiter()));
  start(reg.register_task(std::string("s"), "s").instrument(sleeper()));
  start(reg.register_task(std::string("x"), "x").instrument(waker()));
  CHECK(current_after_set == "x");
  CHECK(names_of_task(reg, "x") == "x\n  x spawned\n  x waits\n");
  CHECK(names_of_task(reg, "j") == "j\n  j waits\n");
  CHECK(names_of_task(reg, "s") == "s\n");
  CHECK(current_root() == "<none>");
  queue.run();
  for (rt::event* e : {&j_wakes, &spawned_wakes, &x_wakes}) e->set();
  CHECK(reg.collect_all().empty());
}

namespace {

/// An integrated coroutine that starts suspended and frees itself at its
/// end: its handle goes in a queue, for whatever runs the queue to start it.
struct queued_start {
  struct promise_type : await_tree::promise_mixin {
    queued_start get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(std::suspend_never{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<> handle;
};

}  // namespace

TEST_CASE("eager work of a coroutine that another task's yield started is in no task",
          "[contract][transfer]") {
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  rt::event s_wakes;
  rt::event first_wakes;
  rt::event second_wakes;
  rt::event x_wakes;
  auto unregistered = [&]() -> queued_start {
    [&]() -> fire_and_forget { co_await instrument(first_wakes.wait(), "first spawned"); }();
    [&]() -> fire_and_forget { co_await instrument(second_wakes.wait(), "second spawned"); }();
    co_return;
  };
  queue.push(unregistered().handle);
  auto sleeper = [&]() -> rt::task<> {
    co_await instrument(s_wakes.wait(), "s waits");
    co_await queue.yield();  // plain: starts the unregistered coroutine
  };
  auto waker = [&]() -> rt::task<> {
    s_wakes.set();
    co_await instrument(x_wakes.wait(), "x waits");
  };
  start(reg.register_task(std::string("s"), "s").instrument(sleeper()));
  start(reg.register_task(std::string("x"), "x").instrument(waker()));
  CHECK(names_of_task(reg, "x") == "x\n  x waits\n");
  CHECK(names_of_task(reg, "s") == "s\n");
  for (rt::event* e : {&first_wakes, &second_wakes, &x_wakes}) e->set();
  queue.run();
  CHECK(reg.collect_all().empty());
}

namespace {

/// A generator of the integrated kind (promise_mixin, on_final_suspend):
/// `co_await` on it transfers to it, and its co_yield transfers back to the
/// consumer without the library seeing it. With `BounceBetween`, it
/// suspends and resumes at once between its values, an await the library
/// does see.
template <bool BounceBetween>
class numbers {
 public:
  struct promise_type : await_tree::promise_mixin {
    int value = 0;
    std::coroutine_handle<> consumer;

    struct to_consumer {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().consumer;
      }
      void await_resume() const noexcept {}
    };

    numbers get_return_object() noexcept {
      return numbers(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    to_consumer yield_value(int v) noexcept {
      value = v;
      return {};
    }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(to_consumer{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };

  struct next_value {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
      h.promise().consumer = consumer;
      return h;
    }
    int await_resume() const noexcept { return h.promise().value; }
  };

  next_value operator co_await() noexcept { return {coroutine_.handle()}; }

 private:
  explicit numbers(std::coroutine_handle<promise_type> h) noexcept : coroutine_(h) {}
  test::owned_coroutine<promise_type> coroutine_;
};

template <bool BounceBetween>
numbers<BounceBetween> one_two() {
  if constexpr (BounceBetween) co_await bounce{};
  co_yield 1;
  if constexpr (BounceBetween) co_await bounce{};
  co_yield 2;
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("a generator's co_yield leaves its consumer's context as it found it",
                       "[contract][transfer]", ((bool BounceBetween), BounceBetween), false, true) {
  await_tree::registry reg = manual_registry();
  rt::event consumer_wakes;
  rt::event outside_wakes;
  int sum = 0;
  auto consumer = [&]() -> rt::task<> {
    numbers<BounceBetween> values = one_two<BounceBetween>();
    sum += co_await values;
    CHECK(current_root() == "c");
    sum += co_await values;
    co_await instrument(consumer_wakes.wait(), "c waits");
  };
  start(reg.register_task(std::string("c"), "c").instrument(consumer()));
  CHECK(sum == 3);
  CHECK(current_root() == "<none>");
  [&]() -> fire_and_forget { co_await instrument(outside_wakes.wait(), "outside"); }();
  CHECK(names_of_task(reg, "c") == "c\n  c waits\n");
  consumer_wakes.set();
  outside_wakes.set();
  CHECK_FALSE(reg.get(std::string("c")));
}

namespace {

/// Coroutine frames from one static slot while it is free, so that a
/// coroutine made after another was destroyed reuses its address (malloc
/// may not, and a sanitizer's allocator never does at once).
struct one_slot_frames {
  static void* operator new(std::size_t size) {
    if (frame_in_slot != nullptr || size > sizeof(slot)) return ::operator new(size);
    frame_in_slot = slot;
    return slot;
  }
  // Compares with the pointer stored at allocation, not with `slot` itself:
  // clang's split coroutine takes its frame as a noalias argument, and at -O1
  // folds "a noalias argument equals a global's address" to false.
  static void operator delete(void* frame) noexcept {
    if (frame == frame_in_slot) {
      frame_in_slot = nullptr;
    } else {
      ::operator delete(frame);
    }
  }
  alignas(std::max_align_t) static inline std::byte slot[16384];
  static inline void* frame_in_slot = nullptr;
};

template <class Mode>
struct slot_promise : std::conditional_t<Mode::exact, await_tree::promise_mixin, rt::no_mixin>,
                      one_slot_frames {};

}  // namespace

TEMPLATE_TEST_CASE("a coroutine that reuses a cancelled child's frame is not in the child's task",
                   "[contract][transfer][cancel]", integrated, not_integrated) {
  using task = typename TestType::template task<>;
  using leaf_task = rt::basic_task<void, slot_promise<TestType>>;
  await_tree::registry reg = manual_registry();
  rt::event never;
  rt::event outside_wakes;
  auto leaf = [](rt::event& e, await_tree::span name) -> leaf_task {
    co_await instrument(e.wait(), std::move(name));
  };
  std::optional<leaf_task> child(leaf(never, "child waits"));
  auto parent = [&]() -> task { co_await instrument(*child, "a waits for the child"); };
  auto drive = [](auto rooted) -> rt::task<> { co_await std::move(rooted); };
  std::optional<rt::task<>> driver(
      drive(reg.register_task(std::string("a"), "a").instrument(parent())));
  driver->start();
  if constexpr (TestType::exact) {
    CHECK(names_of_task(reg, "a") == "a\n  a waits for the child\n    child waits\n");
  }
  child.reset();  // cancelled while suspended: its frame's slot is free again
  REQUIRE(one_slot_frames::frame_in_slot == nullptr);
  // Takes the slot, unless the compiler puts this frame in the test's own
  // (clang may, for a frame that does not escape): then no address is
  // reused, and the checks below only say that nothing is wrong.
  leaf_task outside = leaf(outside_wakes, "outside");
  outside.start();  // resumed directly, in no task: nothing of the library sees it start
  CHECK(current_root() == "<none>");
  CHECK(names_of_task(reg, "a") == (TestType::exact ? "a\n  a waits for the child\n" : "a\n"));
  outside_wakes.set();
  driver.reset();
  CHECK_FALSE(reg.get(std::string("a")));
}

namespace {

/// An integrated lazy task that hands its end to whoever awaited it, with its
/// handle in the open, for a wrapper to start.
struct open_task {
  struct promise_type : await_tree::promise_mixin {
    std::coroutine_handle<> awaiting;

    struct to_awaiting {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().awaiting;
      }
      void await_resume() const noexcept {}
    };

    open_task get_return_object() noexcept {
      return open_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(to_awaiting{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };

  explicit open_task(std::coroutine_handle<promise_type> h) noexcept : coroutine(h) {}

  test::owned_coroutine<promise_type> coroutine;
};

/// Awaits a task by starting it with a symmetric transfer, without being a
/// task type itself (a timeout's wrapper): the library cannot tell that the
/// transfer goes to the awaited task's coroutine.
struct started_by_wrapper {
  open_task& task;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    task.coroutine.promise().awaiting = awaiting;
    return task.coroutine.handle();
  }
  void await_resume() const noexcept {}
};

}  // namespace

TEST_CASE("a state held back for a coroutine stays held while other tasks wake and suspend",
          "[contract][transfer]") {
  await_tree::registry reg = manual_registry();
  rt::event x_wakes;
  rt::event w_wakes;
  rt::event w_waits_again;
  rt::event child_waits;
  rt::event z_waits;
  auto child = [&]() -> open_task {
    w_wakes.set();  // w resumes and suspends again inline
    { const await_tree::context_scope outside_any_task{await_tree::task_context{}}; }
    co_await instrument(child_waits.wait(), "x child");
  };
  auto woken = [&]() -> rt::task<> {
    co_await instrument(x_wakes.wait(), "x waits");
    open_task started = child();
    co_await started_by_wrapper{started};
  };
  auto other = [&]() -> rt::task<> {
    co_await instrument(w_wakes.wait(), "w waits");
    co_await instrument(w_waits_again.wait(), "w waits again");
  };
  std::string current_after_set;
  auto waker = [&]() -> rt::task<> {
    x_wakes.set();  // x's wrapper hands the thread to its child, unseen
    current_after_set = current_root();
    co_await instrument(z_waits.wait(), "z waits");
  };
  start(reg.register_task(std::string("w"), "w").instrument(other()));
  start(reg.register_task(std::string("x"), "x").instrument(woken()));
  start(reg.register_task(std::string("z"), "z").instrument(waker()));
  CHECK(current_after_set == "z");
  CHECK(names_of_task(reg, "z") == "z\n  z waits\n");
  CHECK(names_of_task(reg, "w") == "w\n  w waits again\n");
  CHECK(names_of_task(reg, "x") == "x\n");  // the child's place is unknown: shown nowhere
  for (rt::event* e : {&child_waits, &w_waits_again, &z_waits}) e->set();
  CHECK(reg.collect_all().empty());
}

namespace {

/// An integrated task whose final awaiter frees the frame, then resumes the
/// awaiting coroutine inline: the awaiter resumes while the thread still
/// names the child, whose context is gone.
struct frees_then_resumes {
  struct promise_type : await_tree::promise_mixin {
    std::coroutine_handle<> awaiter;

    struct free_then_resume {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        const std::coroutine_handle<> next = h.promise().awaiter;
        h.destroy();
        next.resume();
      }
      void await_resume() const noexcept {}
    };

    frees_then_resumes get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(free_then_resume{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };

  std::coroutine_handle<promise_type> handle;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle.promise().awaiter = awaiter;
    return handle;
  }
  void await_resume() const noexcept {}
};

}  // namespace

TEST_CASE("an awaiter resumed inline by a child that freed its frame reads nothing of it",
          "[contract][transfer]") {
  single_task t;
  rt::event parent_waits;
  auto child = []() -> frees_then_resumes { co_await instrument(bounce{}, "child bounces"); };
  auto body = [&]() -> rt::task<> {
    co_await instrument(child(), "awaits the child");
    co_await instrument(parent_waits.wait(), "parent waits");
  };
  t.spawn(body());
  t.ex.run_until(0ms);
  CHECK(names_of(t.reg.get(0)) == "root\n  parent waits\n");
  parent_waits.set();
  CHECK(t.finishes());
}

namespace {

/// A coroutine that is not integrated, starts suspended and frees itself at
/// its end: its handle goes in a queue, for whatever runs the queue to
/// start it.
struct unseen_start {
  struct promise_type {
    unseen_start get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<> handle;
};

}  // namespace

// Task u wakes t inline; t's yield hands the thread to X, which the library
// cannot see; X wakes a inline, and a hands the thread on to b (by a yield,
// or by a child's end that transfers to a). When b suspends, X's code goes
// on: the state given back is u's, held back for X still, or X's eager
// coroutine takes u's position.
TEMPLATE_TEST_CASE_SIG(
    "a state held back for an unseen coroutine stays held when a task it woke "
    "hands the thread on",
    "[contract][transfer]", ((bool ByChildEnd), ByChildEnd), false, true) {
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  rt::event t_wakes;
  rt::event a_wakes;
  rt::event b_waits;
  rt::event u_waits;
  rt::event x_spawned_waits;
  std::string current_in_x;
  auto unseen = [&]() -> unseen_start {
    a_wakes.set();
    current_in_x = current_root();
    [&]() -> fire_and_forget { co_await instrument(x_spawned_waits.wait(), "x spawned"); }();
    co_return;
  };
  auto parked = [&]() -> rt::task<> {
    co_await queue.park();
    co_await instrument(b_waits.wait(), "b waits");
  };
  auto yielder = [&]() -> rt::task<> {
    co_await instrument(t_wakes.wait(), "t waits");
    co_await queue.yield();  // plain: transfers to X
  };
  auto a_child = [&]() -> rt::task<> { co_await instrument(a_wakes.wait(), "a child waits"); };
  auto handing_on = [&]() -> rt::task<> {
    if constexpr (ByChildEnd) {
      co_await a_child();  // ends inline in X's code, transferring to a
      co_await queue.yield();
    } else {
      co_await instrument(a_wakes.wait(), "a waits");
      co_await queue.yield();  // plain: transfers to b
    }
  };
  auto waker = [&]() -> rt::task<> {
    t_wakes.set();
    co_await instrument(u_waits.wait(), "u waits");
  };
  queue.push(unseen().handle);
  start(reg.register_task(std::string("b"), "b").instrument(parked()));  // after X
  start(reg.register_task(std::string("t"), "t").instrument(yielder()));
  start(reg.register_task(std::string("a"), "a").instrument(handing_on()));
  start(reg.register_task(std::string("u"), "u").instrument(waker()));
  CHECK(current_in_x == "<none>");
  CHECK(names_of_task(reg, "u") == "u\n  u waits\n");
  CHECK(names_of_task(reg, "b") == "b\n  b waits\n");
  for (rt::event* e : {&x_spawned_waits, &u_waits, &b_waits}) e->set();
  queue.run();
  CHECK(reg.collect_all().empty());
}

// Each task's child wakes the next task in its first statement, before it
// has awaited anything: every one of those children, and u, carry the
// state they give back on the thread at once.
TEST_CASE("eight activations nested inline before their first awaits are exact",
          "[contract][transfer]") {
  constexpr int depth = 8;
  await_tree::registry reg = manual_registry();
  std::array<rt::event, depth + 2> wakes;
  std::array<rt::event, depth + 1> child_waits;
  rt::event u_waits;
  std::array<std::string, depth + 1> current_after_child;
  auto child = [&](int k) -> rt::task<> {
    if (k < depth) wakes[k + 1].set();
    co_await instrument(child_waits[k].wait(), "child waits");
  };
  auto woken = [&](int k) -> rt::task<> {
    co_await instrument(wakes[k].wait(), "waits");
    co_await instrument(child(k), "calls child");
    current_after_child[k] = current_root();
  };
  for (int k = 1; k <= depth; ++k) {
    start(reg.register_task(std::to_string(k), "t").instrument(woken(k)));
  }
  std::string current_after_set;
  auto waker = [&]() -> rt::task<> {
    wakes[1].set();
    current_after_set = current_root();
    co_await instrument(u_waits.wait(), "u waits");
  };
  start(reg.register_task(std::string("u"), "u").instrument(waker()));
  CHECK(current_after_set == "u");
  CHECK(names_of_task(reg, "u") == "u\n  u waits\n");
  for (int k = 1; k <= depth; ++k) {
    INFO("task " << k);
    CHECK(names_of_task(reg, std::to_string(k).c_str()) == "t\n  calls child\n    child waits\n");
  }
  for (int k = 1; k <= depth; ++k) child_waits[k].set();
  for (int k = 1; k <= depth; ++k) CHECK(current_after_child[k] == "t");
  u_waits.set();
  CHECK(reg.collect_all().empty());
}

namespace {

/// Runs `start` in its await_suspend and resumes at once: work started
/// inline by a plain await of the awaiting coroutine.
template <class Start>
struct runs_inline {
  Start start;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) {
    start();
    return false;
  }
  void await_resume() const noexcept {}
};

// Clang 16 does not deduce an aggregate's template arguments by itself.
template <class Start>
runs_inline(Start) -> runs_inline<Start>;

}  // namespace

// p wakes t inline; t's yield hands the thread to X, which ends unseen, and
// p's code goes on under its own state, held back for X. p's next await is
// p's code: what it starts inline belongs to p again.
TEST_CASE(
    "a task whose inline wake-up ended in an unseen coroutine vouches again at its next await",
    "[contract][transfer]") {
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  rt::event p_goes;
  rt::event t_wakes;
  rt::event child_waits;
  rt::event p_waits;
  std::string current_in_child;
  auto unseen = []() -> unseen_start { co_return; };
  auto yielder = [&]() -> rt::task<> {
    co_await instrument(t_wakes.wait(), "t waits");
    co_await queue.yield();  // plain: transfers to X
  };
  auto waker = [&]() -> rt::task<> {
    co_await p_goes.wait();
    t_wakes.set();
    co_await runs_inline{[&] {
      // Parameters, not captures: the closure is gone when the child resumes.
      [](rt::event& waits, std::string& current) -> fire_and_forget {
        co_await instrument(waits.wait(), "p child waits");
        current = current_root();
      }(child_waits, current_in_child);
    }};
    co_await instrument(p_waits.wait(), "p waits");
  };
  queue.push(unseen().handle);
  start(reg.register_task(std::string("t"), "t").instrument(yielder()));
  start(reg.register_task(std::string("p"), "p").instrument(waker()));
  p_goes.set();
  CHECK(names_of_task(reg, "p") == "p\n  p child waits\n  p waits\n");
  child_waits.set();
  CHECK(current_in_child == "p");
  p_waits.set();
  queue.run();
  CHECK(reg.collect_all().empty());
}

namespace {

/// A task type that is not integrated and whose await runs its body inline,
/// from await_suspend, as cppcoro's first task type did (not by a transfer):
/// its body runs inside the await of its root.
class starts_inline {
 public:
  struct promise_type {
    std::coroutine_handle<> continuation;
    bool awaiter_suspended = false;

    // Resumes the awaiting coroutine if its await_suspend has returned.
    struct resume_awaiter {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        if (h.promise().awaiter_suspended) h.promise().continuation.resume();
      }
      void await_resume() const noexcept {}
    };

    starts_inline get_return_object() noexcept {
      return starts_inline(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    resume_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiting) {
    coroutine_.promise().continuation = awaiting;
    coroutine_.handle().resume();
    if (coroutine_.handle().done()) return false;
    coroutine_.promise().awaiter_suspended = true;
    return true;
  }
  void await_resume() const noexcept {}

 private:
  explicit starts_inline(std::coroutine_handle<promise_type> h) noexcept : coroutine_(h) {}
  test::owned_coroutine<promise_type> coroutine_;
};

}  // namespace

// x's body, of a type the library cannot see, runs inside its root's await
// and wakes y inline; y's when_all starts an integrated branch there.
// Neither y's code nor the branch is x's.
TEST_CASE("what a task of a type not integrated wakes inline from its root's await is not its",
          "[contract]") {
  await_tree::registry reg = manual_registry();
  rt::event y_wakes;
  rt::event branch_waits;
  std::string current_in_y;
  std::string x_tree_after_waking;
  auto woken = [&]() -> rt::plain_task<> {
    co_await y_wakes.wait();
    current_in_y = current_root();
    co_await rt::when_all(instrument(branch_waits.wait(), "y branch"));
  };
  auto waker = [&]() -> starts_inline {
    y_wakes.set();
    x_tree_after_waking = names_of_task(reg, "x");
    co_return;
  };
  start(reg.register_task(std::string("y"), "y").instrument(woken()));
  start(reg.register_task(std::string("x"), "x").instrument(waker()));
  CHECK(current_in_y == "<none>");
  CHECK(x_tree_after_waking == "x\n");
  CHECK(names_of_task(reg, "y") == "y\n");
  CHECK_FALSE(reg.get(std::string("x")));
  branch_waits.set();
  CHECK(reg.collect_all().empty());
}

namespace {

/// Eager, and lets its exception escape to whoever resumes it (as
/// std::generator's promise does), rethrowing it as the library asks.
struct rethrowing_job {
  struct promise_type : await_tree::promise_mixin {
    rethrowing_job get_return_object() noexcept {
      return rethrowing_job{
          owned_coroutine(std::coroutine_handle<promise_type>::from_promise(*this))};
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(std::suspend_always{}); }
    void return_void() noexcept {}
    void unhandled_exception() { await_tree::rethrow_unhandled_exception(*this); }
  };

  owned_coroutine<promise_type> coroutine;
};

}  // namespace

// r starts a job inline, which parks; resumed by the queue's loop, outside
// any task, the job throws and its exception escapes from the loop. Then an
// unregistered coroutine starts on the same thread.
TEMPLATE_TEST_CASE("a coroutine whose exception escapes to its resumer leaves its task behind",
                   "[contract]", integrated, not_integrated) {
  using task = typename TestType::template task<>;
  await_tree::registry reg = manual_registry();
  transfer_queue queue;
  std::optional<rethrowing_job> job;
  rt::event r_wakes;
  rt::event k_wakes;
  auto failing = [&]() -> rethrowing_job {
    co_await queue.park();
    throw std::runtime_error("job failed");
  };
  auto registered = [&]() -> task {
    job.emplace(failing());  // started inline: code of r
    co_await instrument(r_wakes.wait(), "r waits");
  };
  auto unregistered = [&]() -> task { co_await instrument(k_wakes.wait(), "k waits"); };
  start(reg.register_task(std::string("r"), "r").instrument(registered()));
  CHECK_THROWS_AS(queue.run(), std::runtime_error);
  CHECK(current_root() == "<none>");
  [&]() -> fire_and_forget { co_await unregistered(); }();
  CHECK(names_of_task(reg, "r") == (TestType::exact ? "r\n  r waits\n" : "r\n"));
  r_wakes.set();
  k_wakes.set();
  CHECK(reg.collect_all().empty());
}
