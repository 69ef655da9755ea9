// SPDX-License-Identifier: Apache-2.0
// A bounded-time concurrency stress run: tasks with parallel branches hop
// between the threads of two pools while other threads snapshot, dump,
// register, replace, drop and cancel tasks, clear registries and drop whole
// registries whose tasks still run. Every snapshot is checked; every kind of
// operation is counted and must have happened. Run under ThreadSanitizer in
// CI. AWAIT_TREE_STRESS_SECONDS sets the duration (default 1.5 s).
//
// Every task is named "t<id>" and its nodes "t<id> <role>", with roles
// placed so that a node's parent follows from its name:
//
//   t7
//     t7 hop
//     t7 join
//       t7 branch 1
//         t7 branch 1 hop
//     t7 parked          (only tasks that wait to be cancelled)

#include "runtime/combinators.hpp"
#include "runtime/task.hpp"
#include "runtime/thread_pool.hpp"
#include "snapshotter.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace test;
using await_tree::instrument;

namespace {

using steady = std::chrono::steady_clock;

constexpr int hops_per_branch = 2;
constexpr int max_tasks_in_flight = 16;
constexpr int keys_per_runner = 4;
constexpr std::size_t max_parked_tasks = 4;

/// How long the operations go on: AWAIT_TREE_STRESS_SECONDS, or 1.5 s, short
/// enough for every CI configuration.
steady::duration stress_duration() {
  double seconds = 1.5;
  if (const char* value = std::getenv("AWAIT_TREE_STRESS_SECONDS")) seconds = std::atof(value);
  return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
}

enum class op {
  task_finished,
  task_cancelled,
  registered,
  shadowing,
  root_dropped,
  cleared,
  registry_replaced,
  registry_dropped,
  tree_checked,
  get,
  text_dump,
  json_dump,
  grouped_dump,
  context_checked,
};
// In the order of `op`.
constexpr std::array<std::string_view, 14> op_names = {
    "tasks finished",       "tasks cancelled",
    "registrations",        "over a live key",
    "unused roots dropped", "clears",
    "registries replaced",  "registries dropped",
    "trees checked",        "gets",
    "text dumps",           "JSON dumps",
    "grouped dumps",        "contexts checked",
};

class op_counter {
 public:
  void add(op o) noexcept { counts_[index(o)].fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] long operator[](op o) const noexcept { return counts_[index(o)].load(); }
  [[nodiscard]] std::string summary() const {
    std::string out;
    for (std::size_t i = 0; i < op_names.size(); ++i) {
      out += fmt::format("{}{}: {}", i == 0 ? "" : ", ", op_names[i], counts_[i].load());
    }
    return out;
  }

 private:
  static constexpr std::size_t index(op o) noexcept { return static_cast<std::size_t>(o); }
  std::array<std::atomic<long>, op_names.size()> counts_{};
};

/// Where tasks wait to be cancelled: arriving publishes the task's id and
/// never resumes it; its owner then destroys it, on another thread.
class parking_lot {
 public:
  struct awaiter {
    parking_lot& lot;
    std::uint64_t id;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) { lot.arrive(id); }
    void await_resume() const noexcept {}
  };
  [[nodiscard]] awaiter park(std::uint64_t id) noexcept { return {*this, id}; }

  [[nodiscard]] std::vector<std::uint64_t> take_arrivals() {
    const std::lock_guard lock(mutex_);
    return std::exchange(arrived_, {});
  }

 private:
  void arrive(std::uint64_t id) {
    const std::lock_guard lock(mutex_);
    arrived_.push_back(id);
  }

  std::mutex mutex_;
  std::vector<std::uint64_t> arrived_;
};

/// The registry most operations use; one thread replaces it now and then.
class registry_slot {
 public:
  [[nodiscard]] await_tree::registry current() const {
    const std::lock_guard lock(mutex_);
    return registry_;
  }
  /// The old registry goes (unless a copy is in use) outside the lock.
  void replace(await_tree::registry next) {
    const std::lock_guard lock(mutex_);
    std::swap(registry_, next);
  }

 private:
  mutable std::mutex mutex_;
  await_tree::registry registry_;
};

/// Everything the threads and tasks share. The pools come last so that they
/// are destroyed first: their threads finish the last task frames while the
/// rest still exists.
struct world {
  explicit world(steady::duration length) : deadline(steady::now() + length) {}
  [[nodiscard]] bool running() const { return steady::now() < deadline; }
  [[nodiscard]] std::uint64_t new_task_id() { return next_id.fetch_add(1); }
  [[nodiscard]] std::string new_task_name() { return fmt::format("t{}", new_task_id()); }

  steady::time_point deadline;
  op_counter ops;
  failure_log failures;
  parking_lot lot;
  registry_slot registries;
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<int> in_flight{0};
  rt::thread_pool plain_pool{2};
  rt::thread_pool scoped_pool{2, /*with_context_scope=*/true};
};

rt::thread_pool& pool_for(world& w, int turn) {
  return turn % 2 == 0 ? w.plain_pool : w.scoped_pool;
}

// ---------------------------------------------------------------------------
// Checking a snapshot
// ---------------------------------------------------------------------------

/// Whether a node in role `child` may sit under one in role `parent` (roles
/// are names without the task's prefix; the root's role is empty).
bool proper_parent(std::string_view child, std::string_view parent) {
  if (child == "hop" || child == "join" || child == "parked") return parent.empty();
  if (!child.starts_with("branch ")) return false;
  if (child.ends_with(" hop")) return parent == child.substr(0, child.size() - 4);
  return parent == "join";
}

/// The problem with a tree's names, if any: each node must belong to the
/// root's task and sit under the parent its role calls for.
std::optional<std::string> name_problem(const await_tree::tree& t) {
  const auto& nodes = t.nodes();
  const std::string prefix = std::string(nodes[0].span.name()) + ' ';
  std::vector<std::string_view> roles{""};  // of the nodes on the path to the current one
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    const std::string_view name = nodes[i].span.name();
    if (!name.starts_with(prefix)) return fmt::format("node \"{}\" in task {}", name, prefix);
    const std::string_view role = name.substr(prefix.size());
    roles.resize(nodes[i].depth);
    if (!proper_parent(role, roles.back())) {
      return fmt::format("node \"{}\" under \"{}\"", name, roles.back());
    }
    roles.push_back(role);
  }
  return std::nullopt;
}

std::size_t json_node_count(const nlohmann::json& node) {
  std::size_t count = 1;
  for (const auto& child : node.at("children")) count += json_node_count(child);
  return count;
}

/// The problem with a snapshot, if any: its shape, its names, and both
/// renderings.
std::optional<std::string> tree_problem(const await_tree::tree& t) {
  if (!well_formed(t)) return "malformed tree";
  if (t.detached_node_count() != 0) return "detached nodes";
  if (auto problem = name_problem(t)) return problem;
  const std::string text = t.to_string();
  if (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) != t.nodes().size()) {
    return "text is not one line per node";
  }
  const auto json = nlohmann::json::parse(t.to_json(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return "JSON does not parse";
  if (json_node_count(json.at("tree")) != t.nodes().size()) return "JSON lost nodes";
  return std::nullopt;
}

void check_tree(world& w, const await_tree::tree& t) {
  if (auto problem = tree_problem(t)) w.failures.record(*problem + " in:\n" + t.to_string());
  w.ops.add(op::tree_checked);
}

/// From inside a task: current_tree() must be that task's.
void check_context(world& w, std::string_view task_name) {
  const auto t = await_tree::current_tree();
  if (!t || t->nodes()[0].span.name() != task_name) {
    w.failures.record(fmt::format("current_tree() in {} is {}", task_name,
                                  t ? t->to_string() : std::string("empty")));
  }
  w.ops.add(op::context_checked);
}

// ---------------------------------------------------------------------------
// The tasks (coroutines take parameters, never captures)
// ---------------------------------------------------------------------------

rt::task<> branch(world& w, std::string task_name, int index) {
  const std::string hop = fmt::format("{} branch {} hop", task_name, index);
  for (int i = 0; i < hops_per_branch; ++i) {
    co_await instrument(pool_for(w, index + i).schedule(), hop);
    check_context(w, task_name);
  }
}

/// Hops to a pool, runs branches on both pools at once, then either hops
/// once more and ends or, when `park_as` is set, waits to be cancelled.
rt::task<> body(world& w, std::string name, std::optional<std::uint64_t> park_as) {
  co_await instrument(w.plain_pool.schedule(), name + " hop");
  check_context(w, name);
  co_await instrument(rt::when_all(instrument(branch(w, name, 0), name + " branch 0"),
                                   instrument(branch(w, name, 1), name + " branch 1"),
                                   instrument(branch(w, name, 2), name + " branch 2")),
                      name + " join");
  check_context(w, name);
  if (park_as) {
    co_await instrument(w.lot.park(*park_as), name + " parked");
  } else {
    co_await instrument(w.scoped_pool.schedule(), name + " hop");
    check_context(w, name);
  }
}

/// Owns itself: starts `task` on a pool thread and counts it while it runs.
fire_and_forget run_on_pool(world& w, await_tree::rooted<rt::task<>> task) {
  co_await w.plain_pool.schedule();
  co_await std::move(task);
  w.ops.add(op::task_finished);
  w.in_flight.fetch_sub(1);
}

void spawn(world& w, await_tree::tree_root root, std::string name) {
  w.in_flight.fetch_add(1);
  run_on_pool(w, std::move(root).instrument(body(w, std::move(name), std::nullopt)));
}

rt::task<> hold(await_tree::rooted<rt::task<>> task) { co_await std::move(task); }

void drop(await_tree::tree_root) {}

// ---------------------------------------------------------------------------
// The threads
// ---------------------------------------------------------------------------

/// Registers tasks under a few keys of its own (so that many registrations
/// shadow a live task) and spawns them; some roots are dropped unused
/// instead.
void run_tasks(world& w, int runner) {
  std::minstd_rand random(static_cast<unsigned>(runner));
  while (w.running()) {
    if (w.in_flight.load() >= max_tasks_in_flight) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    await_tree::registry reg = w.registries.current();
    const int key = runner * 100 + static_cast<int>(random() % keys_per_runner);
    const bool shadowing = reg.get(key).has_value();
    w.ops.add(op::get);
    std::string name = w.new_task_name();
    auto root = reg.register_task(key, name);
    w.ops.add(shadowing ? op::shadowing : op::registered);
    // Nobody else registers this key here; only clear() may have unlisted it.
    if (const auto t = reg.get(key); t && t->nodes()[0].span.name() != name) {
      w.failures.record(fmt::format("key {} shows {} after registering {}", key,
                                    t->nodes()[0].span.name(), name));
    }
    if (random() % 8 == 0) {
      drop(std::move(root));
      w.ops.add(op::root_dropped);
      // An older task under this key may show again; the dropped one may not.
      if (const auto t = reg.get(key); t && t->nodes()[0].span.name() == name) {
        w.failures.record(fmt::format("key {} shows {} after its root went", key, name));
      }
    } else {
      spawn(w, std::move(root), std::move(name));
    }
  }
}

/// Starts tasks that park, registered anonymously, and cancels each one (its
/// frame destroyed, on this thread) once it has parked, which may be while
/// the pool thread that parked it is still in the instrumented await_suspend.
/// At the end, waits for the last ones to park and cancels them too.
void cancel_tasks(world& w) {
  std::map<std::uint64_t, rt::task<>> tasks;
  const auto cancel_arrivals = [&] {
    for (const std::uint64_t id : w.lot.take_arrivals()) {
      tasks.erase(id);
      w.ops.add(op::task_cancelled);
    }
  };
  while (w.running()) {
    if (tasks.size() < max_parked_tasks) {
      const std::uint64_t id = w.new_task_id();
      const std::string name = fmt::format("t{}", id);
      auto root = w.registries.current().register_anonymous(name);
      w.ops.add(op::registered);
      auto& task =
          tasks.emplace(id, hold(std::move(root).instrument(body(w, name, id)))).first->second;
      task.start();
    }
    cancel_arrivals();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  while (!tasks.empty()) {
    cancel_arrivals();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

/// A registry of its own with a few tasks, dropped while they run.
void drop_registry_with_tasks(world& w) {
  await_tree::registry doomed;
  for (int key = 0; key < 3; ++key) {
    std::string name = w.new_task_name();
    auto root = doomed.register_task(key, name);
    spawn(w, std::move(root), std::move(name));
    w.ops.add(op::registered);
  }
}

/// Replaces the shared registry (tasks run on in the old one), clears it, or
/// drops a registry whose tasks run, in turn.
void churn_registries(world& w) {
  for (int round = 0; w.running(); ++round) {
    switch (round % 3) {
      case 0:
        w.registries.replace(await_tree::registry());
        w.ops.add(op::registry_replaced);
        break;
      case 1:
        w.registries.current().clear();
        w.ops.add(op::cleared);
        break;
      default:
        drop_registry_with_tasks(w);
        w.ops.add(op::registry_dropped);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

/// Every line of a text dump is blank, a header in brackets, or a node of a
/// task, whose names all start with "t" (or with "t#" once digits are masked).
bool text_dump_ok(std::string_view dump) {
  for (std::size_t begin = 0; begin < dump.size();) {
    const std::size_t end = std::min(dump.find('\n', begin), dump.size());
    const std::string_view line = dump.substr(begin, end - begin);
    if (!line.empty() && !line.starts_with('[') && !line.starts_with('t') &&
        !line.starts_with(' ')) {
      return false;
    }
    begin = end + 1;
  }
  return true;
}

void check_dump(world& w, const std::string& dump, bool json) {
  if (json ? !nlohmann::json::accept(dump) : !text_dump_ok(dump)) {
    w.failures.record(fmt::format("bad {} dump:\n{}", json ? "JSON" : "text", dump));
  }
}

/// Snapshots every tree of the shared registry in a loop, and in turn one
/// key's tree, or a text, JSON or grouped dump.
void snapshot(world& w, int seed) {
  std::minstd_rand random(static_cast<unsigned>(seed));
  for (int round = 0; w.running(); ++round) {
    const await_tree::registry reg = w.registries.current();
    for (const auto& entry : reg.collect_all()) check_tree(w, entry.second);
    const auto dump = [&](await_tree::dump_format format, bool grouped) {
      return await_tree::dump_to_string({.source = reg,
                                         .format = format,
                                         .grouped = grouped,
                                         .grouping = {.normalize = &await_tree::mask_digits}});
    };
    switch (round % 4) {
      case 0:
        if (const auto t = reg.get(static_cast<int>(random() % keys_per_runner))) check_tree(w, *t);
        w.ops.add(op::get);
        break;
      case 1:
        check_dump(w, dump(await_tree::dump_format::text, false), false);
        w.ops.add(op::text_dump);
        break;
      case 2:
        check_dump(w, dump(await_tree::dump_format::json, false), true);
        w.ops.add(op::json_dump);
        break;
      default:
        check_dump(w, dump(await_tree::dump_format::text, true), false);
        check_dump(w, dump(await_tree::dump_format::json, true), true);
        w.ops.add(op::grouped_dump);
    }
  }
}

}  // namespace

TEST_CASE("stress: tasks, snapshots, registrations and registries at once", "[stress][threads]") {
  const steady::time_point start = steady::now();
  world w(stress_duration());
  {
    std::vector<std::jthread> threads;
    threads.emplace_back(run_tasks, std::ref(w), 0);
    threads.emplace_back(run_tasks, std::ref(w), 1);
    threads.emplace_back(cancel_tasks, std::ref(w));
    threads.emplace_back(churn_registries, std::ref(w));
    threads.emplace_back(snapshot, std::ref(w), 0);
    threads.emplace_back(snapshot, std::ref(w), 1);
  }
  REQUIRE(eventually([&] { return w.in_flight.load() == 0; }));
  const std::chrono::duration<double> wall = steady::now() - start;
  std::cout << fmt::format("stress run of {:.2f}s: {}\n", wall.count(), w.ops.summary());

  INFO("first failure: " << w.failures.first());
  CHECK(w.failures.count() == 0);
  CHECK(w.registries.current().collect_all().empty());
  for (std::size_t i = 0; i < op_names.size(); ++i) {
    INFO(op_names[i]);
    CHECK(w.ops[static_cast<op>(i)] > 0);
  }
}
