// SPDX-License-Identifier: Apache-2.0
// No heap allocation per instrumented await in the steady state (literal
// spans): counted with a replacement of the global allocation functions.
// Sanitizer runtimes own the allocation functions themselves, so these tests
// are compiled only into the builds without one.

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AWAIT_TREE_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AWAIT_TREE_TEST_SANITIZED 1
#endif
#endif

#ifndef AWAIT_TREE_TEST_SANITIZED

#include "counting_new.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <coroutine>
#include <string>
#include <string_view>

using counting_new::allocations;

using namespace test;
using await_tree::instrument;

namespace {

/// Parks the awaiting coroutine in a slot; the test resumes it from outside,
/// as an executor thread would: every await is a full suspension.
struct park {
  std::coroutine_handle<>& slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { slot = h; }
  void await_resume() const noexcept {}
};

}  // namespace

TEST_CASE("instrumented awaits allocate nothing in the steady state", "[alloc]") {
  constexpr int warm_up = 100;
  constexpr int measured = 10'000;
  await_tree::registry reg = manual_registry();
  std::coroutine_handle<> parked;
  int rounds = 0;
  auto body = [&]() -> rt::task<> {
    for (;;) {
      co_await instrument(park{parked}, "parked");  // suspends, resumed from outside
      co_await instrument(instrument(bounce{}, "inner"), "outer");  // nested, no hand-off
      co_await await_tree::track(park{parked});                     // tracked, no node
      ++rounds;
    }
  };
  auto drive = [](auto rooted) -> rt::task<> { co_await std::move(rooted); };
  rt::task<> t = drive(reg.register_task(0, "root").instrument(body()));
  t.start();
  const auto run_rounds = [&](int n) {
    for (int i = 0; i < 2 * n; ++i) std::exchange(parked, nullptr).resume();
  };
  run_rounds(warm_up);
  const std::size_t before = allocations;
  run_rounds(measured);
  const std::size_t during = allocations - before;
  CHECK(rounds == warm_up + measured);
  CHECK(during == 0);
  CHECK(text_of(reg, 0) == "root [0ns]\n  parked [0ns]\n");
}

TEST_CASE("registering and dropping a root allocates nothing in the steady state", "[alloc]") {
  await_tree::registry reg = manual_registry();
  const auto register_and_drop = [&reg](int rounds) {
    for (int i = 0; i < rounds; ++i) {
      const auto by_number = reg.register_task(i, "numbered");
      const auto by_text = reg.register_task("worker", "named");
      const auto anonymous = reg.register_anonymous("anonymous");
    }
  };
  register_and_drop(100);  // fills the pools of trees and of entries
  const std::size_t before = allocations;
  register_and_drop(10'000);
  const std::size_t during = allocations - before;
  CHECK(during == 0);
  CHECK(reg.collect_all().empty());
}

TEST_CASE("looking up a text key makes no string", "[alloc]") {
  // Longer than any small-string buffer: a temporary std::string would allocate.
  constexpr std::string_view long_key = "a text key far longer than a small string's buffer";
  await_tree::registry reg = manual_registry();
  const auto root = reg.register_task(long_key, "registered");
  const std::string other_key = "another text key, as long as the first one or longer";

  const std::size_t before = allocations;
  const bool found_other = reg.get(std::string_view(other_key)).has_value();
  const bool found_literal = reg.get("a literal that no task was registered under").has_value();
  const std::size_t during = allocations - before;
  CHECK_FALSE(found_other);
  CHECK_FALSE(found_literal);
  CHECK(during == 0);
  CHECK(reg.get(long_key).has_value());  // the same lookup, finding the task
}

TEST_CASE("the allocation counter sees allocations", "[alloc]") {
  const std::size_t before = allocations;
  void* p = ::operator new(16);  // a direct call: unlike a new-expression, never elided
  ::operator delete(p);
  const std::size_t after = allocations;
  CHECK(after == before + 1);
}

#endif  // AWAIT_TREE_TEST_SANITIZED
