// SPDX-License-Identifier: Apache-2.0
// The context contract on a runtime written apart from the examples', in the
// style of cppcoro 1.0: a task's awaiter resumes the awaited coroutine inside
// its await_suspend and returns whether it still runs, the final awaiter
// resumes the awaiting coroutine inline; a second task type is started by a
// symmetric transfer and posts the awaiting coroutine to the pool when it
// ends; a when_all starts its branches as eager coroutines, a board wakes
// waiting tasks inline on the waker's thread, and a two-thread pool runs what
// is posted to it. Tasks wake each other across both threads, and a leaf
// now and then fails with an exception caught further up, while a third
// thread snapshots the registry.
//
// Every node is named by its path: the task's name for the root ("t7"), then
// one step a node ("t7/join/a/leaf"). So each snapshot shows where a node may
// sit: under an ancestor by name in any mode, under its parent by name when
// the runtime is integrated.

#include <await_tree/await_tree.hpp>

#include "owned_coroutine.hpp"
#include "snapshotter.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using await_tree::instrument;

namespace {

namespace other {

/// The promise of a task type that knows nothing of await-tree.
struct not_integrated {};

/// Threads that resume what is posted to them, in order.
class thread_pool {
 public:
  struct schedule_awaiter {
    thread_pool& pool;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { pool.post(h); }
    void await_resume() const noexcept {}
  };

  explicit thread_pool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  /// Runs what is queued, then joins.
  ~thread_pool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  [[nodiscard]] schedule_awaiter schedule() noexcept { return {*this}; }

  void post(std::coroutine_handle<> h) {
    {
      const std::lock_guard lock(mutex_);
      queue_.push_back(h);
    }
    wake_.notify_one();
  }

 private:
  void run() {
    while (const std::optional<std::coroutine_handle<>> next = take()) next->resume();
  }
  std::optional<std::coroutine_handle<>> take() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return std::nullopt;
    const std::coroutine_handle<> next = queue_.front();
    queue_.pop_front();
    return next;
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::coroutine_handle<>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// What the promises of both task types share: lazy, they end with an int
/// or an exception, for the coroutine that awaits them.
template <class PromiseBase>
struct result_promise : PromiseBase {
  std::suspend_always initial_suspend() const noexcept { return {}; }
  void return_value(int v) noexcept { value = v; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
  int result() const {
    if (error) std::rethrow_exception(error);
    return value;
  }

  std::coroutine_handle<> continuation;
  int value = 0;
  std::exception_ptr error;
};

/// A lazy task of an int. Its awaiter and its final awaiter race to flip
/// `arrived`: whichever comes second continues the awaiting coroutine.
template <class PromiseBase>
class task {
 public:
  struct promise_type : result_promise<PromiseBase> {
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        promise_type& p = self.promise();
        if (p.arrived.exchange(true, std::memory_order_acq_rel)) p.continuation.resume();
      }
      void await_resume() const noexcept {}
    };

    task get_return_object() noexcept { return task(handle::from_promise(*this)); }
    auto final_suspend() const noexcept { return await_tree::on_final_suspend(final_awaiter{}); }

    std::atomic<bool> arrived{false};
  };

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
    promise_type& p = coroutine_.promise();
    p.continuation = awaiting;
    coroutine_.handle().resume();
    return !p.arrived.exchange(true, std::memory_order_acq_rel);
  }
  int await_resume() const { return coroutine_.promise().result(); }

 private:
  using handle = std::coroutine_handle<promise_type>;
  explicit task(handle coroutine) noexcept : coroutine_(coroutine) {}

  test::owned_coroutine<promise_type> coroutine_;
};

/// A lazy task started by a symmetric transfer, whose end posts the
/// awaiting coroutine to a pool instead of resuming it.
template <class PromiseBase>
class posting_task {
 public:
  struct promise_type : result_promise<PromiseBase> {
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        promise_type& p = self.promise();
        p.pool->post(p.continuation);
      }
      void await_resume() const noexcept {}
    };

    posting_task get_return_object() noexcept { return posting_task(handle::from_promise(*this)); }
    auto final_suspend() const noexcept { return await_tree::on_final_suspend(final_awaiter{}); }

    thread_pool* pool = nullptr;
  };

  /// Where the awaiting coroutine goes on once this task ends.
  [[nodiscard]] posting_task&& resuming_on(thread_pool& pool) && noexcept {
    coroutine_.promise().pool = &pool;
    return std::move(*this);
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    coroutine_.promise().continuation = awaiting;
    return coroutine_.handle();
  }
  int await_resume() const { return coroutine_.promise().result(); }

 private:
  using handle = std::coroutine_handle<promise_type>;
  explicit posting_task(handle coroutine) noexcept : coroutine_(coroutine) {}

  test::owned_coroutine<promise_type> coroutine_;
};

/// Starts inline in its caller and frees itself when done.
template <class PromiseBase>
struct eager {
  struct promise_type : PromiseBase {
    eager get_return_object() const noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    auto final_suspend() const noexcept {
      return await_tree::on_final_suspend(std::suspend_never{});
    }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
};

/// Two branches and the awaiting coroutine arrive; the last one to arrive
/// resumes the awaiting coroutine (or, being it, does not suspend).
struct join_counter {
  std::atomic<int> remaining{3};
  std::coroutine_handle<> awaiting;

  bool arrive_last() noexcept { return remaining.fetch_sub(1, std::memory_order_acq_rel) == 1; }
};

/// A branch that failed arrives too (cppcoro's when_all keeps its exception
/// for the result; here nothing reads it).
template <class PromiseBase, class Awaitable>
eager<PromiseBase> run_branch(Awaitable branch, join_counter& counter) {
  try {
    co_await std::move(branch);
  } catch (const std::runtime_error&) {
  }
  if (counter.arrive_last()) counter.awaiting.resume();
}

template <class BranchPromiseBase, class First, class Second>
class all_of_two {
 public:
  all_of_two(First first, Second second)
      : first_(std::move(first)),
        second_(std::move(second)),
        counter_(std::make_unique<join_counter>()) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiting) {
    counter_->awaiting = awaiting;
    run_branch<BranchPromiseBase>(std::move(first_), *counter_);
    run_branch<BranchPromiseBase>(std::move(second_), *counter_);
    return !counter_->arrive_last();
  }
  void await_resume() const noexcept {}

 private:
  First first_;
  Second second_;
  std::unique_ptr<join_counter> counter_;  // the branches hold it
};

template <class BranchPromiseBase, class First, class Second>
all_of_two<BranchPromiseBase, First, Second> when_all(First first, Second second) {
  return {std::move(first), std::move(second)};
}

/// Where tasks wait to be woken, inline, by whoever wakes them.
class wake_board {
 public:
  struct wait_awaiter {
    wake_board& board;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      const std::lock_guard lock(board.mutex_);
      board.waiting_.push_back(h);
    }
    void await_resume() const noexcept {}
  };

  [[nodiscard]] wait_awaiter wait() noexcept { return {*this}; }

  [[nodiscard]] std::size_t waiting() {
    const std::lock_guard lock(mutex_);
    return waiting_.size();
  }

  /// Resumes the longest waiter, if any, on the calling thread.
  void wake_one() {
    std::coroutine_handle<> next;
    {
      const std::lock_guard lock(mutex_);
      if (waiting_.empty()) return;
      next = waiting_.front();
      waiting_.pop_front();
    }
    next.resume();
  }
  void wake_all() {
    std::deque<std::coroutine_handle<>> all;
    {
      const std::lock_guard lock(mutex_);
      all.swap(waiting_);
    }
    for (const std::coroutine_handle<> h : all) h.resume();
  }

 private:
  std::mutex mutex_;
  std::deque<std::coroutine_handle<>> waiting_;
};

}  // namespace other

/// Whether `name` is `ancestor`'s path or lies below it.
bool within(std::string_view name, std::string_view ancestor) {
  return name.starts_with(ancestor) &&
         (name.size() == ancestor.size() || name[ancestor.size()] == '/');
}

std::string_view parent_path(std::string_view path) { return path.substr(0, path.rfind('/')); }

/// The task a path is in: its first step.
std::string_view task_of(std::string_view path) { return path.substr(0, path.find('/')); }

/// What a tree may show: every node below its task's root by name; and
/// under an ancestor by name (any mode) or its parent by name (exact), with
/// nothing detached when exact. Empty when it may, else what is wrong.
std::optional<std::string> misplaced_node(const await_tree::tree& t, bool exact) {
  const auto nodes = t.nodes();
  const std::string_view task = nodes[0].span.name();
  std::vector<std::string_view> path_to{task};  // the names of the ancestors by depth
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    const std::string_view name = nodes[i].span.name();
    if (!within(name, task) || name == task) return fmt::format("{} in {}", name, task);
    if (nodes[i].is_detached_root) {
      if (exact) return fmt::format("{} detached", name);
      path_to.assign({name});
      continue;
    }
    path_to.resize(nodes[i].depth);
    const std::string_view parent = path_to.back();
    const bool placed =
        exact ? parent == parent_path(name) : within(name, parent) && name != parent;
    if (!placed) return fmt::format("{} under {}", name, parent);
    path_to.push_back(name);
  }
  return std::nullopt;
}

/// Which of the runtime's coroutine types are integrated.
template <class TaskPromiseBase, class BranchPromiseBase>
struct runtime_mode {
  using task = other::task<TaskPromiseBase>;
  using posting_task = other::posting_task<TaskPromiseBase>;
  using branch_base = BranchPromiseBase;
  static constexpr bool exact = std::is_same_v<TaskPromiseBase, await_tree::promise_mixin> &&
                                std::is_same_v<BranchPromiseBase, await_tree::promise_mixin>;
};
using integrated = runtime_mode<await_tree::promise_mixin, await_tree::promise_mixin>;
using not_integrated = runtime_mode<other::not_integrated, other::not_integrated>;
/// Integrated tasks whose when_all branches are not: a branch's awaits only
/// forward, so what it starts sits at the join.
using branches_not_integrated = runtime_mode<await_tree::promise_mixin, other::not_integrated>;
/// Integrated branches in tasks that are not: only what a root starts has a
/// position, and a root starts no branch.
using tasks_not_integrated = runtime_mode<other::not_integrated, await_tree::promise_mixin>;

constexpr int tasks_per_round = 40;
constexpr int calls_per_task = 12;
constexpr int call_depth = 3;

/// One round: every task registered, run to its end on the pool, woken by
/// other tasks and by the test's thread, while a snapshotter checks the trees.
template <class Mode>
class tasks_round {
 public:
  using task = typename Mode::task;
  using posting_task = typename Mode::posting_task;

  void run() {
    std::atomic<int> finished{0};
    {
      other::thread_pool pool(2);
      pool_ = &pool;
      // The second half starts while tasks of the first wait (unless all that
      // started have ended): each wakes one inline as it starts, inside its
      // root's await.
      for (int k = 0; k < tasks_per_round; ++k) {
        if (k >= tasks_per_round / 2) {
          (void)test::eventually([&] { return board_.waiting() > 0 || finished.load() == k; });
        }
        start(k, finished);
      }
      // Wakes whoever waits, so that no task waits for ever once the others end.
      while (finished.load() < tasks_per_round) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        board_.wake_all();
      }
    }
    snapshots_.stop();
  }

  [[nodiscard]] const test::failure_log& failures() const noexcept { return failures_; }
  [[nodiscard]] long positions_checked() const noexcept { return positions_checked_.load(); }
  [[nodiscard]] long snapshots() const noexcept { return snapshots_.snapshots(); }
  [[nodiscard]] std::size_t tasks_left() const { return registry_.collect_all().size(); }

 private:
  void start(int k, std::atomic<int>& finished) {
    const std::string name = fmt::format("t{}", k);
    drive(registry_.register_task(k, name).instrument(body(name, k)), finished);
  }

  static other::eager<typename Mode::branch_base> drive(await_tree::rooted<task> root,
                                                        std::atomic<int>& finished) {
    co_await std::move(root);
    ++finished;
  }

  task body(std::string name, unsigned seed) {
    board_.wake_one();  // before its first suspension: inline in the root's await
    std::mt19937 rng(seed);
    for (int i = 0; i < calls_per_task; ++i) {
      try {
        co_await call(name, call_depth, rng());
      } catch (const std::runtime_error&) {
        check_position(name, name);  // where the handler runs
      }
      if (rng() % 3 == 0) co_await instrument(board_.wait(), name + "/wait");
      check_position(name, name);
    }
    co_return 0;
  }

  /// A call tree `depth` deep below `home`, the node this coroutine runs at;
  /// its nested calls are posting tasks, the others cppcoro's.
  template <class Task = task>
  Task call(std::string home, int depth, unsigned seed) {
    std::mt19937 rng(seed);
    if (depth == 0) co_return co_await instrument(leaf(home + "/leaf", rng()), home + "/leaf");
    if (rng() % 2 == 0) {
      const std::string join = home + "/join";
      co_await instrument(other::when_all<typename Mode::branch_base>(
                              instrument(call(join + "/a", depth - 1, rng()), join + "/a"),
                              instrument(call(join + "/b", depth - 1, rng()), join + "/b")),
                          join);
    } else {
      const std::string nested = fmt::format("{}/call{}", home, depth);
      try {
        co_await instrument(call<posting_task>(nested, depth - 1, rng()).resuming_on(*pool_),
                            nested);
        co_await call(home, depth - 1, rng());  // a plain await: no node
      } catch (const std::runtime_error&) {
        check_position(task_of(home), home);
      }
    }
    check_position(task_of(home), home);
    co_return depth;
  }

  task leaf(std::string home, unsigned seed) {
    switch (seed % 4) {
      case 0:
        co_await instrument(pool_->schedule(), home + "/hop");
        break;
      case 1:
        co_await pool_->schedule();
        break;
      case 2:
        board_.wake_one();
        break;
      default:  // one leaf in 40 fails
        if (seed % 40 == 3) throw std::runtime_error("a leaf failed");
        break;
    }
    check_position(task_of(home), home);
    co_return 0;
  }

  /// What current_tree() says in code of the task `owner` running at `home`:
  /// that task's tree, with `home` marked current when exact (a root is never
  /// marked), or nothing when not. (Its current_id() is the newest marked
  /// node, which may be another thread's: branches of a join run at once.)
  void check_position(std::string_view owner, std::string_view home) {
    ++positions_checked_;
    const std::optional<await_tree::tree> t = await_tree::current_tree();
    if (!t) {
      if (Mode::exact) failures_.record(fmt::format("no current tree at {}", home));
      return;
    }
    const auto nodes = t->nodes();
    const bool home_marked = std::any_of(nodes.begin(), nodes.end(), [&](const auto& n) {
      return n.span.name() == home && n.is_current;
    });
    const bool right_task = nodes[0].span.name() == owner;
    if (!right_task || (Mode::exact && home != owner && !home_marked)) {
      failures_.record(fmt::format("current_tree() at {}:\n{}", home, *t));
    }
  }

  bool tree_fits(const await_tree::tree& t) {
    if (const std::optional<std::string> problem = misplaced_node(t, Mode::exact)) {
      failures_.record(fmt::format("{}:\n{}", *problem, t));
      return false;
    }
    return true;
  }

  test::failure_log failures_;
  std::atomic<long> positions_checked_{0};
  await_tree::registry registry_;
  other::wake_board board_;
  other::thread_pool* pool_ = nullptr;
  test::snapshotter snapshots_{
      registry_,
      [this](const await_tree::any_key&, const await_tree::tree& t) { return tree_fits(t); }};
};

constexpr int rounds = 3;

}  // namespace

TEMPLATE_TEST_CASE(
    "on a cppcoro-style runtime trees are exact when integrated and never wrong when not",
    "[other-runtime][threads]", integrated, not_integrated, branches_not_integrated,
    tasks_not_integrated) {
  for (int r = 0; r < rounds; ++r) {
    tasks_round<TestType> one;
    one.run();
    INFO("first failure: " << one.failures().first());
    CHECK(one.failures().count() == 0);
    CHECK(one.positions_checked() > tasks_per_round * calls_per_task);
    CHECK(one.snapshots() > 0);
    CHECK(one.tasks_left() == 0);
  }
}
