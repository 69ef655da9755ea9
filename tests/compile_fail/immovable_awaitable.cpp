// SPDX-License-Identifier: Apache-2.0
// Must not compile: instrument() on a temporary that cannot be moved (it
// holds a std::atomic). The message says to wrap it as an lvalue.

#include <await_tree/instrumented.hpp>

#include <atomic>
#include <coroutine>

struct counted_wait {
  std::atomic<int> waiters{0};
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) noexcept {}
  void await_resume() noexcept {}
};

int main() {
  auto wrapped = await_tree::instrument(counted_wait{}, "count");
  return wrapped.label().name().empty() ? 1 : 0;
}
