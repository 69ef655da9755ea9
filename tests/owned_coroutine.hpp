// SPDX-License-Identifier: Apache-2.0
#pragma once

// The part every test task type shares: it owns its coroutine. The types
// differ in how they start and end it, which is what each test is about.

#include <coroutine>
#include <utility>

namespace test {

/// A coroutine destroyed with its owner. Movable, so that a task can be
/// returned from its coroutine; never reassigned, which no test needs.
template <class Promise>
class owned_coroutine {
 public:
  explicit owned_coroutine(std::coroutine_handle<Promise> handle) noexcept : handle_(handle) {}
  owned_coroutine(owned_coroutine&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  owned_coroutine& operator=(owned_coroutine&&) = delete;
  ~owned_coroutine() {
    if (handle_) handle_.destroy();
  }

  [[nodiscard]] std::coroutine_handle<Promise> handle() const noexcept { return handle_; }
  [[nodiscard]] Promise& promise() const noexcept { return handle_.promise(); }

 private:
  std::coroutine_handle<Promise> handle_;
};

}  // namespace test
