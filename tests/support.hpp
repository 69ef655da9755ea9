// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers shared by the tests: a registry on the manual clock, a coroutine
// that starts eagerly and owns itself, and awaiters with particular
// suspension behaviour.

#include <await_tree/await_tree.hpp>

#include "runtime/executor.hpp"

#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace test {

using namespace std::chrono_literals;

/// A registry whose durations come from rt::manual_clock, reset to zero.
inline await_tree::registry manual_registry(bool verbose = false) {
  rt::manual_clock::set(0ns);
  return await_tree::registry(
      await_tree::config{.verbose = verbose, .clock = &rt::manual_clock::now});
}

/// The key's tree as text, or a marker when the key is not registered.
template <class Key>
std::string text_of(const await_tree::registry& reg, const Key& key) {
  const auto t = reg.get(key);
  return t ? t->to_string() : std::string("<no tree>");
}

/// The names of a tree's nodes, one a line, indented by depth, without
/// durations.
inline std::string names_of(const std::optional<await_tree::tree>& t) {
  std::string names;
  if (!t) return "<no tree>";
  for (const auto& n : t->nodes()) {
    names += std::string(n.depth * 2, ' ') + std::string(n.span.name()) + "\n";
  }
  return names;
}

/// The setting most tests share: a registry on the manual clock, a
/// deterministic executor, and the task under test registered as key 0.
struct single_task {
  await_tree::registry reg = manual_registry();
  rt::executor ex{true};

  template <class Awaitable>
  void spawn(Awaitable task) {
    rt::spawn(ex, reg.register_task(0, "root").instrument(std::move(task)));
  }
  /// The task's tree as text now.
  [[nodiscard]] std::string text() const { return text_of(reg, 0); }
  /// Runs everything left; true when the task has ended and left the registry.
  [[nodiscard]] bool finishes() {
    ex.run();
    return !reg.get(0).has_value();
  }
};

/// Starts running at once, inline in its caller, and frees itself when done:
/// work that is started inside a node and may outlive it. Integrated, like
/// every coroutine type of the examples' runtime.
struct fire_and_forget {
  struct promise_type : await_tree::promise_mixin {
    fire_and_forget get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(std::suspend_never{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// Suspends, then resumes at once by returning false from await_suspend:
/// goes through the whole suspension protocol without a hand-off.
struct bounce {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) const noexcept { return false; }
  void await_resume() const noexcept {}
};

/// Its await_suspend throws, so the coroutine resumes with the exception.
struct throwing_suspend {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const { throw std::runtime_error("suspend failed"); }
  void await_resume() const noexcept {}
};

}  // namespace test
