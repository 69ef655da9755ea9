// SPDX-License-Identifier: Apache-2.0
#pragma once

// A fixed pool of threads; `co_await pool.schedule()` moves the awaiting
// coroutine onto one of them. Optionally resumes every coroutine inside an
// await_tree::context_scope, the executor-side integration point.

#include <await_tree/context.hpp>

#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace rt {

class thread_pool {
 public:
  explicit thread_pool(std::size_t threads, bool with_context_scope = false)
      : with_context_scope_(with_context_scope) {
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  struct schedule_awaiter {
    thread_pool& pool;
    bool await_ready() const noexcept { return false; }
    // Out of line: clang 16 may keep an inlined await_suspend's temporaries
    // (the context here) in the coroutine frame, which a pool thread may
    // already be running when they are destroyed (LLVM #56301).
    [[gnu::noinline]] void await_suspend(std::coroutine_handle<> h) {
      pool.post(h, await_tree::task_context::current());
    }
    void await_resume() const noexcept {}
  };
  [[nodiscard]] schedule_awaiter schedule() noexcept { return {*this}; }

  [[nodiscard]] bool on_pool_thread() const {
    for (const auto& t : workers_) {
      if (t.get_id() == std::this_thread::get_id()) return true;
    }
    return false;
  }

 private:
  struct job {
    std::coroutine_handle<> handle;
    await_tree::task_context context;
  };

  // Notifies under the lock: once a worker can take the job, this call no
  // longer touches the pool, which may then be destroyed as soon as the job
  // has run.
  void post(std::coroutine_handle<> h, await_tree::task_context ctx) {
    const std::lock_guard lock(mutex_);
    jobs_.push_back({h, std::move(ctx)});
    wake_.notify_one();
  }

  void work() {
    for (;;) {
      job next;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        next = std::move(jobs_.front());
        jobs_.pop_front();
      }
      if (with_context_scope_) {
        const await_tree::context_scope scope(next.context);
        next.handle.resume();
      } else {
        next.handle.resume();
      }
    }
  }

  bool with_context_scope_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace rt
