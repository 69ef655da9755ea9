// SPDX-License-Identifier: Apache-2.0
#pragma once

// A one-shot event. set() resumes every waiter inline, on the calling thread:
// the case where one task runs another's code in the middle of its own.

#include <coroutine>
#include <list>
#include <mutex>
#include <utility>

namespace rt {

class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  class awaiter {
   public:
    explicit awaiter(event& e) noexcept : event_(e) {}
    // Movable until awaited, like any awaitable that can be passed around.
    awaiter(awaiter&& other) noexcept : event_(other.event_) {}
    awaiter& operator=(awaiter&&) = delete;
    // Destroyed while waiting: the waiting coroutine was cancelled.
    ~awaiter() {
      const std::lock_guard lock(event_.mutex_);
      if (waiting_) event_.waiters_.erase(position_);
    }

    bool await_ready() const noexcept {
      const std::lock_guard lock(event_.mutex_);
      return event_.set_;
    }
    bool await_suspend(std::coroutine_handle<> h) {
      const std::lock_guard lock(event_.mutex_);
      if (event_.set_) return false;
      position_ = event_.waiters_.insert(event_.waiters_.end(), {h, &waiting_});
      waiting_ = true;
      return true;
    }
    void await_resume() const noexcept {}

   private:
    event& event_;
    std::list<std::pair<std::coroutine_handle<>, bool*>>::iterator position_;
    bool waiting_ = false;
  };

  [[nodiscard]] awaiter wait() noexcept { return awaiter(*this); }

  void set() {
    {
      const std::lock_guard lock(mutex_);
      set_ = true;
    }
    // One waiter at a time, each taken from the list when its turn comes:
    // resuming one may cancel another (a when_any branch dropping the loser),
    // whose awaiter then leaves the list instead of being resumed dead.
    for (;;) {
      std::coroutine_handle<> next;
      {
        const std::lock_guard lock(mutex_);
        if (waiters_.empty()) return;
        next = waiters_.front().first;
        *waiters_.front().second = false;
        waiters_.pop_front();
      }
      next.resume();
    }
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::coroutine_handle<>, bool*>> waiters_;
  bool set_ = false;
};

}  // namespace rt
