// SPDX-License-Identifier: Apache-2.0
#pragma once

// A single-threaded executor with timers. With a manual clock it is fully
// deterministic: `step()` resumes one ready coroutine, or jumps the clock to
// the next timer, so a test can look at the trees between any two steps.

#include <await_tree/config.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <list>
#include <thread>
#include <utility>

namespace rt {

/// A clock that moves only when told to; `await_tree::config::clock` can read
/// it through `manual_clock::now`.
class manual_clock {
 public:
  static std::chrono::nanoseconds now() noexcept { return std::chrono::nanoseconds(ns().load()); }
  static void set(std::chrono::nanoseconds t) noexcept { ns().store(t.count()); }
  static void advance(std::chrono::nanoseconds d) noexcept { ns().fetch_add(d.count()); }

 private:
  static std::atomic<std::int64_t>& ns() noexcept {
    static std::atomic<std::int64_t> value{0};
    return value;
  }
};

class executor {
 public:
  class queued_awaiter;

 private:
  struct timer_entry {
    std::chrono::nanoseconds deadline;
    queued_awaiter* owner;
  };

 public:
  /// `manual` picks manual_clock (jumps to the next timer); otherwise the
  /// executor sleeps on the steady clock.
  explicit executor(bool manual = false) noexcept
      : manual_(manual), clock_(manual ? &manual_clock::now : &await_tree::steady_now) {}

  executor(const executor&) = delete;
  executor& operator=(const executor&) = delete;

  [[nodiscard]] std::chrono::nanoseconds now() const noexcept { return clock_(); }

  void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }

  /// Resumes one ready coroutine, or advances time to the earliest timer and
  /// fires the timers due by then (none due after `limit`). Returns false
  /// when nothing is left to do.
  bool step(std::chrono::nanoseconds limit = std::chrono::nanoseconds::max()) {
    if (!ready_.empty()) {
      const std::coroutine_handle<> h = ready_.front();
      ready_.pop_front();
      h.resume();
      return true;
    }
    if (timers_.empty()) return false;
    const std::chrono::nanoseconds due = earliest()->deadline;
    if (manual_) {
      if (manual_clock::now() < due) manual_clock::set(due);
    } else if (const auto wait = due - now(); wait.count() > 0) {
      std::this_thread::sleep_for(wait);
    }
    fire_due_timers(std::min(now(), limit));
    return true;
  }

  void run() {
    while (step()) {
    }
  }

  /// Runs everything due until `deadline` on this executor's clock, then
  /// lets the clock reach it. A timer due later does not fire, even when the
  /// clock has passed it meanwhile (a slow machine): what runs up to a
  /// deadline does not depend on how fast the machine is.
  void run_until(std::chrono::nanoseconds deadline) {
    while (!ready_.empty() || (!timers_.empty() && earliest()->deadline <= deadline))
      step(deadline);
    if (manual_) {
      if (manual_clock::now() < deadline) manual_clock::set(deadline);
    } else if (const auto rest = deadline - now(); rest.count() > 0) {
      std::this_thread::sleep_for(rest);
    }
  }

  void run_for(std::chrono::nanoseconds d) { run_until(now() + d); }

  /// Base of the awaiters that queue their coroutine: destroyed before it is
  /// resumed (the coroutine was cancelled), they take it out of every queue,
  /// so that the executor never resumes a destroyed frame.
  class queued_awaiter {
   public:
    explicit queued_awaiter(executor& ex) noexcept : ex_(ex) {}
    queued_awaiter(queued_awaiter&& other) noexcept : ex_(other.ex_) {}  // movable until awaited
    queued_awaiter& operator=(queued_awaiter&&) = delete;
    ~queued_awaiter() {
      if (state_ == state::timer) ex_.timers_.erase(timer_);
      if (state_ == state::ready) std::erase(ex_.ready_, handle_);
    }
    void await_resume() noexcept { state_ = state::idle; }

   protected:
    void make_ready(std::coroutine_handle<> h) {
      handle_ = h;
      state_ = state::ready;
      ex_.schedule(h);
    }
    void wait_until(std::chrono::nanoseconds deadline, std::coroutine_handle<> h) {
      handle_ = h;
      timer_ = ex_.timers_.insert(ex_.timers_.end(), {deadline, this});
      state_ = state::timer;
    }
    executor& ex_;

   private:
    friend class executor;
    enum class state { idle, timer, ready };
    state state_ = state::idle;
    std::coroutine_handle<> handle_;
    std::list<timer_entry>::iterator timer_;
  };

  class sleep_awaiter : public queued_awaiter {
   public:
    sleep_awaiter(executor& ex, std::chrono::nanoseconds d) noexcept
        : queued_awaiter(ex), duration_(d) {}
    bool await_ready() const noexcept { return duration_.count() <= 0; }
    void await_suspend(std::coroutine_handle<> h) { wait_until(ex_.now() + duration_, h); }

   private:
    std::chrono::nanoseconds duration_;
  };

  [[nodiscard]] sleep_awaiter sleep(std::chrono::nanoseconds d) noexcept { return {*this, d}; }

  /// Lets every other ready coroutine run first.
  class yield_awaiter : public queued_awaiter {
   public:
    using queued_awaiter::queued_awaiter;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { make_ready(h); }
  };
  [[nodiscard]] yield_awaiter yield() noexcept { return yield_awaiter(*this); }

 private:
  std::list<timer_entry>::iterator earliest() {
    auto best = timers_.begin();
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->deadline < best->deadline) best = it;
    }
    return best;
  }

  void fire_due_timers(std::chrono::nanoseconds t) {
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->deadline <= t) {
        queued_awaiter* owner = it->owner;
        it = timers_.erase(it);
        owner->make_ready(owner->handle_);
      } else {
        ++it;
      }
    }
  }

  bool manual_;
  await_tree::clock_function clock_;
  std::deque<std::coroutine_handle<>> ready_;
  std::list<timer_entry> timers_;
};

namespace detail {

/// A coroutine that owns itself: started by the executor, freed at its end.
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace detail

/// Runs `awaitable` on `ex` as an independent coroutine, starting at the
/// executor's next step. An exception escaping it terminates the program.
template <class Awaitable>
void spawn(executor& ex, Awaitable awaitable) {
  struct starter {
    executor& ex;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { ex.schedule(h); }
    void await_resume() const noexcept {}
  };
  [](executor& e, Awaitable a) -> detail::detached {
    co_await starter{e};
    co_await std::move(a);
  }(ex, std::move(awaitable));
}

}  // namespace rt
