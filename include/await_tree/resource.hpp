// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/spin_mutex.hpp>
#include <await_tree/detail/thread_context.hpp>
#include <await_tree/span.hpp>
#include <await_tree/wait_edge.hpp>

#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace await_tree {

/// A named thing that tasks hold and wait for: a lock, a permit, an in-flight
/// fetch, a connection window. It only records who holds it, for the deadlock
/// finder (wait_cycles.hpp); the locking itself stays the program's.
///
///     await_tree::resource in_flight("in-flight fetch of block 7");
///     in_flight.acquire();        // in the task that fetches
///     co_await instrument(filled.wait(),
///                         span("wait for the fetch").waits_for(in_flight));
///     in_flight.release();        // once the block is handed over
///
/// A span that waits for a resource refers to it: the resource must outlive
/// the awaits that name it.
class resource final : private detail::wait_target {
 public:
  explicit resource(std::string name) : name_(std::move(name)) {}

  /// Records the running task, at the node where its code runs now, as the
  /// holder (replacing any earlier holder). Outside any task, the holder is
  /// recorded as being no task.
  [[gnu::noinline]] void acquire() noexcept {
    const detail::thread_context& tc = detail::this_thread_context();
    const detail::position at = tc.says_task_runs() ? tc.here.at : detail::position{};
    const std::lock_guard lock(mutex_);
    held_ = true;
    holder_ = at;
  }

  /// No one holds it any more. Releasing a resource nobody holds does nothing.
  void release() noexcept {
    const std::lock_guard lock(mutex_);
    held_ = false;
    holder_ = {};
  }

  [[nodiscard]] bool is_held() const noexcept {
    const std::lock_guard lock(mutex_);
    return held_;
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend class span;

  [[nodiscard]] wait_edge describe() const override {
    const std::lock_guard lock(mutex_);
    return {.resource = name_, .held = held_, .holder = holder_};
  }

  std::string name_;
  mutable detail::spin_mutex mutex_;
  bool held_ = false;
  detail::position holder_;
};

inline span&& span::waits_for(const resource& r) && {
  set_wait(&r, false);
  return std::move(*this);
}

inline span span::waits_for(const resource& r) const& { return span(*this).waits_for(r); }

}  // namespace await_tree
