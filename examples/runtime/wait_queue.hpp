// SPDX-License-Identifier: Apache-2.0
#pragma once

// Coroutines waiting for some state to change (room in a channel, a cache
// entry filled), like a condition variable: `notify_all()` queues every waiter
// on the executor, and each re-checks its condition when it runs.
//
// Unlike rt::event, waiters are not resumed inline. One waiter's resumption may
// cancel another (a select whose winner drops the loser); a waiter queued on
// the executor takes itself out of the queue when it is destroyed, so the
// executor never resumes a destroyed frame.

#include "executor.hpp"

#include <coroutine>
#include <list>

namespace rt {

class wait_queue {
 public:
  explicit wait_queue(executor& ex) noexcept : ex_(ex) {}
  wait_queue(const wait_queue&) = delete;
  wait_queue& operator=(const wait_queue&) = delete;

  class awaiter : public executor::queued_awaiter {
   public:
    explicit awaiter(wait_queue& queue) noexcept : queued_awaiter(queue.ex_), queue_(queue) {}
    // Movable until awaited, like any awaitable that can be passed around.
    awaiter(awaiter&& other) noexcept : awaiter(other.queue_) {}
    awaiter& operator=(awaiter&&) = delete;
    // Destroyed while waiting: the waiting coroutine was cancelled.
    ~awaiter() {
      if (waiting_) queue_.waiters_.erase(position_);
    }

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      handle_ = h;
      position_ = queue_.waiters_.insert(queue_.waiters_.end(), this);
      waiting_ = true;
    }

   private:
    friend class wait_queue;
    void wake() {
      waiting_ = false;
      make_ready(handle_);
    }

    wait_queue& queue_;
    std::coroutine_handle<> handle_;
    std::list<awaiter*>::iterator position_;
    bool waiting_ = false;
  };

  /// Suspends until the next notify_all().
  [[nodiscard]] awaiter wait() noexcept { return awaiter(*this); }

  void notify_all() {
    std::list<awaiter*> woken;
    woken.swap(waiters_);
    for (awaiter* w : woken) w->wake();
  }

 private:
  executor& ex_;
  std::list<awaiter*> waiters_;
};

}  // namespace rt
