// SPDX-License-Identifier: Apache-2.0
// Names for free: spans named after the calling function and line, whole-
// coroutine spans, formatted spans, and function names shortened the same
// way on GCC and Clang. (The compile errors are checked by tests/compile_fail.)

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace test;
using await_tree::instrument;

namespace {

template <std::size_t N>
struct short_name {
  std::array<char, N> chars{};
  std::size_t size = 0;
  constexpr bool operator==(std::string_view s) const {
    return std::string_view(chars.data(), size) == s;
  }
};

template <std::size_t N>
constexpr short_name<N> shorten(const char (&pretty)[N]) {
  short_name<N> r;
  r.size = await_tree::detail::short_function_name(pretty, r.chars.data());
  return r;
}

// What GCC 12 and Clang 16 print for the same functions, and the one name
// both become.
static_assert(shorten("task<int> ns::{anonymous}::S<T>::read(int) const [with T = int]") ==
              "ns::S::read");
static_assert(shorten("task<int> ns::(anonymous namespace)::S<int>::read(int) const [T = int]") ==
              "ns::S::read");
static_assert(shorten("int main()") == "main");
static_assert(shorten("main()::<lambda(auto:11)> [with auto:11 = int]") == "main::<lambda>");
static_assert(shorten("auto main()::(anonymous class)::operator()(auto) const [x:auto = int]") ==
              "main::<lambda>");
static_assert(shorten("auto main()::(lambda at f.cpp:3:5)::operator()(int) const") ==
              "main::<lambda>");
static_assert(shorten("bool ns::S::operator<(const S&) const") == "ns::S::operator<");
static_assert(shorten("std::ostream& operator<<(std::ostream&, const S&)") == "operator<<");
static_assert(shorten("void S::operator()(int) &&") == "S::operator()");
static_assert(shorten("S::operator int() const") == "S::operator int");
static_assert(shorten("std::vector<std::pair<int, int> > f(std::map<int, int>)") == "f");
static_assert(shorten("static void S::g() noexcept") == "S::g");
static_assert(shorten("void (anonymous namespace)::f()") == "f");
static_assert(shorten("") == "");

/// A coroutine's tree as text, from inside it.
std::string own_tree() { return await_tree::current_tree().value().to_string(); }

}  // namespace

namespace names_test {
namespace {

template <class T>
struct storage {
  // The node's name and the line it is expected to name.
  static rt::task<std::string> read_block(rt::event& e, unsigned& line) {
    line = std::source_location::current().line() + 1;
    co_await instrument(e.wait());
    co_return "read";
  }
};

rt::task<> free_function(rt::event& e, unsigned& line) {
  line = std::source_location::current().line() + 1;
  co_await instrument(e.wait());
}

}  // namespace
}  // namespace names_test

TEST_CASE("instrument(awaitable) names the node after the calling function and line", "[names]") {
  single_task s;
  rt::event e;
  unsigned member_line = 0;
  unsigned free_line = 0;
  auto body = [&]() -> rt::task<> {
    co_await rt::when_all(names_test::storage<int>::read_block(e, member_line),
                          names_test::free_function(e, free_line));
  };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() ==
        "root [0ns]\n"
        "  names_test::storage::read_block (test_names.cpp:" +
            std::to_string(member_line) +
            ") [0ns]\n"
            "  names_test::free_function (test_names.cpp:" +
            std::to_string(free_line) + ") [0ns]\n");
  e.set();
  CHECK(s.finishes());
}

TEST_CASE("a call site is named once: later awaits reuse its text", "[names]") {
  const auto site = [](await_tree::call_site here = {}) { return here; };
  std::vector<await_tree::span> names;
  const unsigned line = std::source_location::current().line() + 1;
  for (int i = 0; i < 3; ++i) names.push_back(site().name());
  CHECK(names[0].name().data() == names[2].name().data());
  CHECK(names[0].name().ends_with("(test_names.cpp:" + std::to_string(line) + ")"));
  const await_tree::span other = site().name();  // another line, another name
  CHECK(other.name() != names[0].name());
  CHECK(site().function_name().name() == names[0].name().substr(0, names[0].name().find(" (")));
}

namespace {
/// A call site per instantiation: each has a function name of its own.
template <std::size_t I>
await_tree::span site_of(await_tree::call_site here = {}) {
  return here.name();
}
}  // namespace

TEST_CASE("threads naming the same new call sites at once get one name each", "[names]") {
  constexpr int threads = 4;
  constexpr int sites = 64;
  std::array<std::array<const char*, sites>, threads> seen{};
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((seen[t][I] = site_of<I>().name().data()), ...);
      }
      (std::make_index_sequence<sites>{});
    });
  }
  for (std::thread& th : pool) th.join();
  for (int t = 1; t < threads; ++t) CHECK(seen[t] == seen[0]);
}

namespace chain {
namespace {

rt::task<> leaf(rt::event& e) {
  auto scope = co_await await_tree::coroutine_span();
  CHECK(scope.has_node());
  co_await e.wait();  // a plain await: the node is the coroutine's own
}

rt::task<int> middle(rt::event& e) {
  auto scope = co_await await_tree::coroutine_span();
  co_await leaf(e);
  co_return 7;
}

rt::task<int> top(rt::event& e) {
  auto scope = co_await await_tree::coroutine_span();
  co_return co_await middle(e) + co_await middle(e);
}

rt::task<> throws_after_wait(rt::event& e) {
  auto scope = co_await await_tree::coroutine_span();
  co_await e.wait();
  throw std::runtime_error("failed");
}

rt::task<std::string> reports_itself() {
  auto scope = co_await await_tree::coroutine_span();
  co_return own_tree();
}

}  // namespace
}  // namespace chain

TEST_CASE("a whole-coroutine span makes every call a node of its caller's", "[names]") {
  single_task s;
  rt::event first;
  int result = 0;
  auto body = [&]() -> rt::task<> { result = co_await chain::top(first); };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() ==
        "root [0ns]\n"
        "  chain::top [0ns]\n"
        "    chain::middle [0ns]\n"
        "      chain::leaf [0ns]\n");
  first.set();  // the first middle() ends; the second waits on the set event no more
  CHECK(s.finishes());
  CHECK(result == 14);
}

TEST_CASE("a whole-coroutine span shows where its code runs and goes with its body", "[names]") {
  single_task s;
  std::string inside;
  std::string after;
  auto body = [&]() -> rt::task<> {
    inside = co_await chain::reports_itself();
    after = own_tree();
  };
  s.spawn(body());
  CHECK(s.finishes());
  CHECK(inside == "root [0ns]\n  chain::reports_itself [0ns]  <== current\n");
  CHECK(after == "root [0ns]\n");  // nothing left of the callee's
}

TEST_CASE("a whole-coroutine span is removed by an exception and by destruction", "[names]") {
  single_task s;
  rt::event e;
  rt::event never;
  bool caught = false;
  std::string after_catch;
  auto wait_e = [&]() -> rt::task<> { co_await e.wait(); };
  auto body = [&]() -> rt::task<> {
    try {
      co_await chain::throws_after_wait(e);
    } catch (const std::runtime_error&) {
      caught = true;
      after_catch = own_tree();
    }
    // A select drops the loser while it waits: its frame is destroyed.
    co_await rt::when_any(chain::leaf(never), wait_e());
    co_await instrument(never.wait(), "after the select");
  };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() == "root [0ns]\n  chain::throws_after_wait [0ns]\n");
  e.set();
  s.ex.run_until(0ms);
  CHECK(caught);
  CHECK(after_catch == "root [0ns]\n");
  CHECK(s.text() == "root [0ns]\n  after the select [0ns]\n");
  never.set();
  CHECK(s.finishes());
}

TEST_CASE("outside any task a whole-coroutine span adds nothing", "[names]") {
  rt::event e;
  bool had_node = true;
  auto body = [&]() -> rt::task<> {
    auto scope = co_await await_tree::coroutine_span();
    had_node = scope.has_node();
    co_await e.wait();
  };
  rt::task<> t = body();
  t.start();
  CHECK_FALSE(had_node);
  e.set();
}

TEST_CASE("format_span formats once, inside the span when the name is short", "[names]") {
  const await_tree::span short_name = await_tree::format_span("read block {}", 42);
  CHECK(short_name.name() == "read block 42");
  // In the span's own storage: the name lies within the object.
  const auto* begin = reinterpret_cast<const char*>(&short_name);
  CHECK(short_name.name().data() >= begin);
  CHECK(short_name.name().data() < begin + sizeof short_name);

  const std::string long_text(await_tree::span::inline_capacity + 1, 'x');
  const await_tree::span long_name = await_tree::format_span("{}", long_text);
  CHECK(long_name.name() == long_text);

  const std::string exact(await_tree::span::inline_capacity, 'y');
  CHECK(await_tree::format_span("{}", exact).name() == exact);

  single_task s;
  rt::event e;
  auto body = [&]() -> rt::task<> { co_await instrument(e.wait(), "wait for {} of {}", 3, "x"); };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() == "root [0ns]\n  wait for 3 of x [0ns]\n");
  e.set();
  CHECK(s.finishes());
}

TEST_CASE("a span kept in a variable names every await it is given", "[names]") {
  single_task s;
  rt::event e;
  const await_tree::span label = await_tree::span(std::string("wait")).long_running();
  auto body = [&]() -> rt::task<> { co_await instrument(instrument(e.wait(), label), label); };
  s.spawn(body());
  s.ex.run_until(0ms);
  CHECK(s.text() == "root [0ns]\n  wait [0ns]\n    wait [0ns]\n");
  CHECK(label.name() == "wait");
  e.set();
  CHECK(s.finishes());
}

TEST_CASE("spans with inline names copy, move and assign their text", "[names]") {
  await_tree::span a = await_tree::format_span("a {}", 1);
  const await_tree::span copy = a;
  CHECK(copy == a);
  CHECK(copy.name().data() != a.name().data());
  await_tree::span moved = std::move(a);
  CHECK(moved.name() == "a 1");
  await_tree::span assigned = "literal";
  assigned = moved;
  CHECK(assigned.name() == "a 1");
  assigned = await_tree::span(std::string(100, 'z'));
  CHECK(assigned.name() == std::string(100, 'z'));
  assigned = copy;
  CHECK(assigned.name() == "a 1");
}
