// SPDX-License-Identifier: Apache-2.0
// The deadlock finder (wait_cycles.hpp): edges declared by spans, resources
// and their holders, random wait-for graphs checked against a reference cycle
// finder written here, dumps and the watchdog, tasks dropped from a cycle,
// and cycles that form and dissolve while other threads analyse them.

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace test;
using await_tree::instrument;
using await_tree::span;
using std::chrono::nanoseconds;

namespace {

std::string task_name(std::size_t i) { return fmt::format("t {}", i); }

std::size_t task_index(const await_tree::any_key& key) {
  return std::stoul(key.get<std::string>()->substr(2));
}

/// One wait, opened `delay` after the task starts, ended by `done`.
struct planned_wait {
  span what;
  nanoseconds delay;
};

rt::task<> wait_after(rt::executor& ex, rt::event& done, const planned_wait& w) {
  co_await ex.sleep(w.delay);
  co_await instrument(done.wait(), w.what);
}

/// Opens `waits[k]` and every later one side by side.
rt::task<> wait_all(rt::executor& ex, rt::event& done, const std::vector<planned_wait>& waits,
                    std::size_t k) {
  if (k + 1 == waits.size()) {
    co_await wait_after(ex, done, waits[k]);
  } else {
    co_await rt::when_all(wait_after(ex, done, waits[k]), wait_all(ex, done, waits, k + 1));
  }
}

/// Takes `held` (at its root), then waits as `waits` says until `done`.
rt::task<> holder_and_waiter(rt::executor& ex, rt::event& done,
                             std::vector<await_tree::resource*> held,
                             std::vector<planned_wait> waits) {
  for (await_tree::resource* r : held) r->acquire();
  if (waits.empty()) {
    co_await done.wait();
  } else {
    co_await wait_all(ex, done, waits, 0);
  }
}

rt::task<> wait_at(rt::event& done, span where) { co_await instrument(done.wait(), where); }

/// Tasks on one executor and one manual-clock registry, ended when it goes.
/// Resources are declared before it by the tests, so they outlive its tasks.
struct task_set {
  await_tree::registry reg;
  rt::executor ex{true};
  rt::event done;

  explicit task_set(nanoseconds threshold = 10s)
      : reg(await_tree::config{.long_running_threshold = threshold,
                               .clock = &rt::manual_clock::now}) {
    rt::manual_clock::set(0ns);
  }
  task_set(const task_set&) = delete;
  task_set& operator=(const task_set&) = delete;
  ~task_set() {
    done.set();
    ex.run();
  }

  void spawn(const std::string& key, rt::task<> body) {
    rt::spawn(ex, reg.register_task(key, "task").instrument(std::move(body)));
  }
};

// ---------------------------------------------------------------------------
// The reference: a wait-for graph of a few tasks, closed transitively.

struct reference_graph {
  struct edge {
    std::size_t to;
    nanoseconds age;
  };
  std::vector<std::vector<edge>> out;

  /// reach[i][j]: a path of one edge or more that `keep` accepts leads from
  /// i to j.
  template <class Keep>
  [[nodiscard]] std::vector<std::vector<bool>> reach(Keep keep) const {
    const std::size_t n = out.size();
    std::vector<std::vector<bool>> r(n, std::vector<bool>(n, false));
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::size_t> todo{i};
      while (!todo.empty()) {
        const std::size_t v = todo.back();
        todo.pop_back();
        for (const edge& e : out[v]) {
          if (keep(e) && !r[i][e.to]) {
            r[i][e.to] = true;
            todo.push_back(e.to);
          }
        }
      }
    }
    return r;
  }

  /// The length of the shortest cycle through `start`.
  template <class Keep>
  [[nodiscard]] std::size_t shortest_cycle(std::size_t start, Keep keep) const {
    std::vector<std::size_t> dist(out.size(), 0);
    std::vector<std::size_t> frontier{start};
    for (std::size_t length = 1; !frontier.empty(); ++length) {
      std::vector<std::size_t> next;
      for (const std::size_t v : frontier) {
        for (const edge& e : out[v]) {
          if (!keep(e)) continue;
          if (e.to == start) return length;
          if (dist[e.to] == 0) {
            dist[e.to] = length;
            next.push_back(e.to);
          }
        }
      }
      frontier = std::move(next);
    }
    return 0;
  }

  template <class Keep>
  [[nodiscard]] bool has_edge(std::size_t from, std::size_t to, nanoseconds age, Keep keep) const {
    return std::any_of(out[from].begin(), out[from].end(),
                       [&](const edge& e) { return e.to == to && e.age == age && keep(e); });
  }
};

/// The least member of each strongly connected set that holds a cycle, over
/// the edges reach was computed with.
std::set<std::size_t> cycle_leaders(const std::vector<std::vector<bool>>& reach) {
  std::set<std::size_t> leaders;
  for (std::size_t i = 0; i < reach.size(); ++i) {
    if (!reach[i][i]) continue;
    std::size_t least = i;
    for (std::size_t j = 0; j < i; ++j) {
      if (reach[i][j] && reach[j][i]) least = std::min(least, j);
    }
    leaders.insert(least);
  }
  return leaders;
}

/// Checks that `c` is a cycle of the edges `keep` accepts, the shortest
/// through its first task, which leads its strongly connected set.
template <class Keep>
void check_cycle(const await_tree::wait_cycle& c, const reference_graph& g,
                 const std::vector<std::vector<bool>>& reach, Keep keep) {
  REQUIRE(c.tasks.size() == c.steps.size());
  REQUIRE(!c.tasks.empty());
  std::vector<std::size_t> ids;
  for (const auto& k : c.tasks) ids.push_back(task_index(k));
  CHECK(std::set<std::size_t>(ids.begin(), ids.end()).size() == ids.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const std::size_t next = ids[(k + 1) % ids.size()];
    CHECK(c.steps[k].task == c.tasks[k]);
    CHECK(g.has_edge(ids[k], next, c.steps[k].node.elapsed, keep));
    CHECK(c.steps[k].waits_for.find(task_name(next)) != std::string::npos);
  }
  CHECK(c.tasks.size() == g.shortest_cycle(ids[0], keep));
  CHECK(cycle_leaders(reach).contains(ids[0]));
}

/// A random wait-for graph: tasks, resources held by some of them, waits on
/// tasks (some on keys nobody has) and on resources (some free), with ages.
struct random_case {
  std::size_t tasks = 0;
  std::size_t resources = 0;
  std::vector<std::optional<std::size_t>> holder;  // by resource
  struct wait {
    std::size_t from;
    bool on_resource;
    std::size_t target;  // a task (>= tasks: a missing key) or a resource
    nanoseconds age;
  };
  std::vector<wait> waits;

  explicit random_case(std::mt19937& rng) {
    const auto pick = [&rng](std::size_t n) {
      return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    tasks = 1 + pick(10);
    resources = pick(4);
    for (std::size_t r = 0; r < resources; ++r) {
      holder.push_back(pick(4) == 0 ? std::nullopt : std::optional<std::size_t>(pick(tasks)));
    }
    for (std::size_t t = 0; t < tasks; ++t) {
      for (std::size_t n = pick(4); n > 0; --n) {
        const bool on_resource = resources > 0 && pick(3) == 0;
        const std::size_t target = on_resource ? pick(resources) : pick(tasks + 1);
        waits.push_back({t, on_resource, target, std::chrono::milliseconds(10 * (1 + pick(10)))});
      }
    }
  }

  [[nodiscard]] reference_graph graph() const {
    reference_graph g;
    g.out.resize(tasks);
    for (const wait& w : waits) {
      if (w.on_resource && holder[w.target]) g.out[w.from].push_back({*holder[w.target], w.age});
      if (!w.on_resource && w.target < tasks) g.out[w.from].push_back({w.target, w.age});
    }
    return g;
  }

  [[nodiscard]] std::size_t missing_key_waits() const {
    return static_cast<std::size_t>(
        std::count_if(waits.begin(), waits.end(),
                      [this](const wait& w) { return !w.on_resource && w.target >= tasks; }));
  }
};

constexpr nanoseconds oldest_age = 100ms;
constexpr nanoseconds random_threshold = 50ms;

/// Runs `c` as real tasks and returns the finder's report at oldest_age.
await_tree::wait_report run_case(const random_case& c,
                                 std::deque<await_tree::resource>& resources) {
  for (std::size_t r = 0; r < c.resources; ++r) resources.emplace_back(fmt::format("r {}", r));
  task_set set(random_threshold);
  for (std::size_t t = 0; t < c.tasks; ++t) {
    std::vector<await_tree::resource*> held;
    for (std::size_t r = 0; r < c.resources; ++r) {
      if (c.holder[r] == t) held.push_back(&resources[r]);
    }
    std::vector<planned_wait> waits;
    for (const random_case::wait& w : c.waits) {
      if (w.from != t) continue;
      span what = w.on_resource ? span("wait").waits_for(resources[w.target])
                                : span("wait").waits_for(task_name(w.target));
      waits.push_back({std::move(what), oldest_age - w.age});
    }
    set.spawn(task_name(t), holder_and_waiter(set.ex, set.done, std::move(held), std::move(waits)));
  }
  set.ex.run_until(oldest_age);
  return await_tree::analyze_waits(set.reg);
}

}  // namespace

TEST_CASE("a span keeps what it waits for, and a snapshot copies it", "[wait_cycles]") {
  await_tree::resource lock("the lock");
  const span on_key = span("send").waits_for(std::string("actor 3"));
  const span copy = on_key;  // NOLINT(performance-unnecessary-copy-initialization)
  span assigned("x");
  assigned = copy;
  CHECK(assigned == on_key);  // the target is not part of equality

  task_set set;
  set.spawn("waiter", wait_at(set.done, assigned));
  set.spawn("holder", [](await_tree::resource& r, rt::event& done) -> rt::task<> {
    r.acquire();
    co_await instrument(done.wait(), span("wait for itself").waits_for(r));
  }(lock, set.done));
  set.ex.run_until(1s);

  const auto waiter = set.reg.get(std::string("waiter"));
  REQUIRE(waiter);
  REQUIRE(waiter->nodes().size() == 2);
  const auto& edge = waiter->nodes()[1].waits_for;
  REQUIRE(edge);
  REQUIRE(edge->task);
  CHECK(edge->task->to_string() == "actor 3");
  CHECK(!waiter->nodes()[0].waits_for);

  const auto holder = set.reg.get(std::string("holder"));
  REQUIRE(holder);
  const auto& on_lock = holder->nodes()[1].waits_for;
  REQUIRE(on_lock);
  CHECK(on_lock->resource == "the lock");
  CHECK(on_lock->held);
  CHECK(lock.is_held());

  // A task waiting for a resource it holds itself waits for itself.
  const auto report = await_tree::analyze_waits(set.reg, 0ns);
  REQUIRE(report.cycles.size() == 1);
  CHECK(report.cycles[0].tasks == std::vector{await_tree::any_key(std::string("holder"))});
  CHECK(report.cycles[0].steps[0].waits_for == "resource \"the lock\" held by [holder]");
  REQUIRE(report.dangling.size() == 1);
  CHECK(report.dangling[0].why == "no live task has this key");
  CHECK(report.dangling[0].waits_for == "task [actor 3]");
  lock.release();
  CHECK(!lock.is_held());
  CHECK(await_tree::analyze_waits(set.reg, 0ns).cycles.empty());  // free: no edge
}

TEST_CASE("random wait-for graphs: the finder agrees with a reference", "[wait_cycles]") {
  std::mt19937 rng(20261130);
  std::size_t deadlocks = 0;
  std::size_t transients = 0;
  for (int round = 0; round < 300; ++round) {
    const random_case c(rng);
    INFO("round " << round << ": " << c.tasks << " tasks, " << c.waits.size() << " waits");
    std::deque<await_tree::resource> resources;
    const await_tree::wait_report report = run_case(c, resources);
    const reference_graph g = c.graph();
    const auto is_old = [](const reference_graph::edge& e) { return e.age >= random_threshold; };
    const auto any = [](const reference_graph::edge&) { return true; };
    const auto reach_old = g.reach(is_old);
    const auto reach_all = g.reach(any);

    std::set<std::size_t> expected_transient;  // leaders of sets with no old cycle
    for (const std::size_t leader : cycle_leaders(reach_all)) {
      bool holds_old_cycle = false;
      for (std::size_t j = 0; j < c.tasks; ++j) {
        const bool same_set = j == leader || (reach_all[leader][j] && reach_all[j][leader]);
        holds_old_cycle = holds_old_cycle || (same_set && reach_old[j][j]);
      }
      if (!holds_old_cycle) expected_transient.insert(leader);
    }

    std::set<std::size_t> found_deadlocks;
    std::set<std::size_t> found_transient;
    bool deadlocks_first = true;
    for (const await_tree::wait_cycle& cycle : report.cycles) {
      if (cycle.suspected_deadlock) {
        CHECK(deadlocks_first);
        check_cycle(cycle, g, reach_old, is_old);
        CHECK(cycle.shortest_wait() >= random_threshold);
        found_deadlocks.insert(task_index(cycle.tasks[0]));
      } else {
        deadlocks_first = false;
        check_cycle(cycle, g, reach_all, any);
        CHECK(cycle.shortest_wait() < random_threshold);
        found_transient.insert(task_index(cycle.tasks[0]));
      }
    }
    CHECK(found_deadlocks == cycle_leaders(reach_old));
    CHECK(found_transient == expected_transient);
    CHECK(report.cycles.size() == found_deadlocks.size() + found_transient.size());
    CHECK(report.dangling.size() == c.missing_key_waits());
    deadlocks += found_deadlocks.size();
    transients += found_transient.size();
  }
  // The generator must produce both kinds, or the comparison proves little.
  CHECK(deadlocks > 50);
  CHECK(transients > 20);
}

TEST_CASE("a dump opens with the suspected deadlock, in text and JSON", "[wait_cycles]") {
  task_set set(2s);
  set.spawn("actor 1",
            wait_at(set.done, span("send to actor 3").waits_for(std::string("actor 3"))));
  set.spawn("actor 3",
            wait_at(set.done, span("recv from actor 1").waits_for(std::string("actor 1"))));
  set.spawn("actor 2", wait_at(set.done, span("idle")));
  set.ex.run_until(3s);

  const std::string text = await_tree::dump_to_string(set.reg);
  CHECK(
      text.starts_with("deadlock suspected (all waiting >= 2.000s): actor 1 -> actor 3 -> actor 1\n"
                       "  [actor 1] send to actor 3 [!!! 3.000s] waits for actor 3\n"
                       "  [actor 3] recv from actor 1 [!!! 3.000s] waits for actor 1\n"
                       "\n[actor 1]\ntask [3.000s]\n  send to actor 3 [!!! 3.000s]\n"));

  const auto parsed = nlohmann::json::parse(
      await_tree::dump_to_string({.source = set.reg, .format = await_tree::dump_format::json}));
  const auto& findings = parsed["wait_findings"];
  CHECK(findings["threshold_ns"] == 2'000'000'000);
  REQUIRE(findings["cycles"].size() == 1);
  CHECK(findings["cycles"][0]["suspected_deadlock"] == true);
  CHECK(findings["cycles"][0]["tasks"] == nlohmann::json({"actor 1", "actor 3"}));
  CHECK(findings["cycles"][0]["steps"][1]["name"] == "recv from actor 1");
  CHECK(findings["cycles"][0]["steps"][1]["waits_for"] == "actor 1");
  CHECK(findings["cycles"][0]["steps"][1]["elapsed_ns"] == 3'000'000'000);
  CHECK(parsed["tasks"].size() == 3);
  const auto flat = nlohmann::json::parse(await_tree::dump_to_string(
      {.source = set.reg, .format = await_tree::dump_format::flat_json, .grouped = true}));
  CHECK(flat["wait_findings"]["cycles"].size() == 1);

  // Before the threshold the same cycle is transient; a dump without a
  // finding has no section.
  task_set young(10s);
  young.spawn("a", wait_at(young.done, span("x").waits_for(std::string("b"))));
  young.spawn("b", wait_at(young.done, span("y").waits_for(std::string("a"))));
  young.ex.run_until(1s);
  CHECK(await_tree::dump_to_string(young.reg).starts_with(
      "transient wait cycle (shortest wait 1.000s): a -> b -> a\n"));
  task_set quiet;
  quiet.spawn("a", wait_at(quiet.done, span("x")));
  CHECK(await_tree::dump_to_string(quiet.reg).starts_with("[a]\n"));
  CHECK(!nlohmann::json::parse(await_tree::dump_to_string(
                                   {.source = quiet.reg, .format = await_tree::dump_format::json}))
             .contains("wait_findings"));
}

TEST_CASE("max_bytes bounds the findings of a dump too", "[wait_cycles]") {
  task_set set;
  for (int i = 0; i < 50; ++i) {
    set.spawn(task_name(static_cast<std::size_t>(i)),
              wait_at(set.done, span("w").waits_for(std::string("nobody"))));
  }
  set.ex.run_until(1s);
  const std::string text = await_tree::dump_to_string({.source = set.reg, .max_bytes = 500});
  CHECK(text.find("more findings not shown\n") != std::string::npos);
  CHECK(text.find("cut at max_bytes 500: 50 more tasks not shown") != std::string::npos);
  const auto cut = nlohmann::json::parse(await_tree::dump_to_string(
      {.source = set.reg, .format = await_tree::dump_format::json, .max_bytes = 500}));
  const auto& findings = cut["wait_findings"];
  CHECK(findings["omitted_findings"].get<std::size_t>() + findings["dangling"].size() == 50);
  CHECK(findings["omitted_findings"] > 0);
  const auto whole = nlohmann::json::parse(
      await_tree::dump_to_string({.source = set.reg, .format = await_tree::dump_format::json}));
  CHECK(whole["wait_findings"]["dangling"].size() == 50);
  CHECK(whole["wait_findings"]["omitted_findings"] == 0);
}

TEST_CASE("the watchdog reports each new deadlock once", "[wait_cycles]") {
  task_set set(1s);
  std::vector<await_tree::wait_cycle> reported;
  await_tree::watchdog dog(
      {.source = set.reg,
       .interval = std::chrono::milliseconds(0),
       .on_stall = [](const await_tree::stall&) {},
       .on_deadlock = [&](const await_tree::wait_cycle& c) { reported.push_back(c); }});
  rt::event first_round;
  set.spawn("a", wait_at(first_round, span("x").waits_for(std::string("b"))));
  set.spawn("b", wait_at(first_round, span("y").waits_for(std::string("a"))));
  set.ex.run_until(500ms);
  dog.check();
  CHECK(reported.empty());  // transient
  set.ex.run_until(2s);
  dog.check();
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].suspected_deadlock);
  dog.check();
  CHECK(reported.size() == 1);  // the same cycle: reported once

  first_round.set();  // the cycle dissolves
  set.ex.run();
  dog.check();
  rt::event second_round;
  set.spawn("a", wait_at(second_round, span("x").waits_for(std::string("b"))));
  set.spawn("b", wait_at(second_round, span("y").waits_for(std::string("a"))));
  set.ex.run_until(set.ex.now() + 2s);
  dog.check();
  CHECK(reported.size() == 2);  // formed again: new
  second_round.set();
  set.ex.run();

  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  await_tree::print_wait_cycle(reported[1], 1s, out);
  std::rewind(out);
  char line[128] = {};
  CHECK(std::fgets(line, sizeof line, out) != nullptr);
  std::fclose(out);
  CHECK(std::string(line) ==
        "await-tree watchdog: deadlock suspected (all waiting >= 1.000s): a -> b -> a\n");
}

TEST_CASE("a task dropped from a cycle leaves waits nobody can end", "[wait_cycles]") {
  await_tree::resource held_by_a("a's lock");
  await_tree::resource held_outside("a lock taken outside any task");
  task_set set(1s);
  rt::event stop_a;
  held_outside.acquire();
  set.spawn("a", [](await_tree::resource& r, rt::event& done, rt::event& stop) -> rt::task<> {
    r.acquire();
    co_await rt::when_any(wait_at(done, span("a waits").waits_for(std::string("b"))), stop.wait());
  }(held_by_a, set.done, stop_a));
  set.spawn("b", wait_at(set.done, span("b waits").waits_for(std::string("a"))));
  set.spawn("c", wait_at(set.done, span("c waits").waits_for(held_by_a)));
  set.spawn("d", wait_at(set.done, span("d waits").waits_for(held_outside)));
  set.ex.run_until(2s);
  auto report = await_tree::analyze_waits(set.reg);
  REQUIRE(report.cycles.size() == 1);
  CHECK(report.cycles[0].tasks.size() == 2);
  REQUIRE(report.dangling.size() == 1);
  CHECK(report.dangling[0].why == "held outside any task");

  stop_a.set();  // a's wait is cancelled and a ends, holding its lock
  set.ex.run_until(3s);
  report = await_tree::analyze_waits(set.reg);
  CHECK(report.cycles.empty());
  REQUIRE(report.dangling.size() == 3);
  CHECK(report.dangling[0].task.to_string() == "b");
  CHECK(report.dangling[0].why == "no live task has this key");
  CHECK(report.dangling[1].task.to_string() == "c");
  CHECK(report.dangling[1].waits_for == "resource \"a's lock\"");
  CHECK(report.dangling[1].why == "held by a task that has ended");
  CHECK(report.dangling[2].why == "held outside any task");
  held_outside.release();
}

namespace {

/// Holds `r` from its start, in the node of whoever awaits it, until `done`.
rt::task<> fetch_holding(await_tree::resource& r, rt::event& done) {
  r.acquire();
  co_await done.wait();
  r.release();
}

/// Starts the fetch, owned by `owner`, and awaits it until cancelled.
rt::task<> start_fetch(std::optional<await_tree::instrumented<rt::task<>>>& owner,
                       await_tree::resource& r, rt::event& done) {
  owner.emplace(instrument(fetch_holding(r, done), "fetch"));
  co_await *owner;
}

}  // namespace

TEST_CASE("a resource held by a detached node is a wait nobody can end", "[wait_cycles]") {
  await_tree::resource in_flight("in-flight fetch");
  std::optional<await_tree::instrumented<rt::task<>>> fetch;  // outlives its requester
  task_set set(1s);
  rt::event drop_requester;
  set.spawn("owner", [](auto& owner, auto& r, rt::event& done, rt::event& drop) -> rt::task<> {
    co_await rt::when_any(instrument(start_fetch(owner, r, done), "requester"), drop.wait());
    co_await instrument(done.wait(), "after the select");
  }(fetch, in_flight, set.done, drop_requester));
  set.spawn("waiter", wait_at(set.done, span("wait for the fetch").waits_for(in_flight)));
  set.ex.run_until(1s);
  auto report = await_tree::analyze_waits(set.reg);
  CHECK(report.empty());  // the owner's fetch runs attached: an edge, no cycle

  drop_requester.set();
  set.ex.run_until(2s);
  report = await_tree::analyze_waits(set.reg);
  CHECK(report.cycles.empty());
  REQUIRE(report.dangling.size() == 1);
  CHECK(report.dangling[0].task.to_string() == "waiter");
  CHECK(report.dangling[0].why == "held by a detached node of [owner] (\"fetch\")");
  CHECK(await_tree::dump_to_string(set.reg).starts_with(
      "wait nobody can end (held by a detached node of [owner] (\"fetch\")):\n"
      "  [waiter] wait for the fetch [!!! 2.000s] waits for resource \"in-flight fetch\"\n\n"));
  set.done.set();
  set.ex.run();
  fetch.reset();
}

TEST_CASE("thousands of tasks in one dump, every wait in one cycle set", "[wait_cycles]") {
  constexpr std::size_t tasks = 2000;
  std::deque<await_tree::resource> locks;
  for (std::size_t i = 0; i < tasks; ++i) locks.emplace_back(fmt::format("lock {}", i));
  task_set set(1s);
  for (std::size_t i = 0; i < tasks; ++i) {
    // Each holds its lock, waits for the next task and for the lock of a task
    // further on: one strongly connected set of 2,000 tasks, 4,000 waits.
    std::vector<planned_wait> waits;
    waits.push_back({span("next").waits_for(task_name((i + 1) % tasks)), 0ns});
    waits.push_back({span("lock").waits_for(locks[(i * 7 + 3) % tasks]), 0ns});
    set.spawn(task_name(i), holder_and_waiter(set.ex, set.done, {&locks[i]}, std::move(waits)));
  }
  set.ex.run_until(2s);
  const std::string text = await_tree::dump_to_string(set.reg);
  const auto report = await_tree::analyze_waits(set.reg);
  REQUIRE(report.cycles.size() == 1);
  const auto& cycle = report.cycles[0];
  CHECK(cycle.suspected_deadlock);
  CHECK(cycle.tasks[0].to_string() == "t 0");
  for (std::size_t k = 0; k < cycle.tasks.size(); ++k) {
    const std::string next = cycle.tasks[(k + 1) % cycle.tasks.size()].to_string();
    CHECK(cycle.steps[k].waits_for.find(next) != std::string::npos);
  }
  CHECK(text.starts_with("deadlock suspected (all waiting >= 1.000s): t 0 -> "));
}

TEST_CASE("cycles that form and dissolve while other threads analyse them", "[wait_cycles]") {
  await_tree::resource lock("lock");
  task_set set(0ns);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> cycles_seen{0};
  std::atomic<std::size_t> bad_cycles{0};
  const auto analyse = [&](bool dump) {
    while (!stop.load()) {
      const auto report = await_tree::analyze_waits(set.reg);
      for (const auto& c : report.cycles) {
        cycles_seen.fetch_add(1);
        for (std::size_t k = 0; k < c.tasks.size(); ++k) {
          const std::string next = c.tasks[(k + 1) % c.tasks.size()].to_string();
          if (c.steps[k].waits_for.find(next) == std::string::npos) bad_cycles.fetch_add(1);
        }
      }
      if (dump) (void)await_tree::dump_to_string(set.reg);
    }
  };
  std::thread analyser(analyse, false);
  std::thread dumper(analyse, true);
  constexpr int rounds = 300;
  for (int round = 0; round < rounds; ++round) {
    rt::event release_a;
    rt::event release_b;
    set.spawn("a", [](await_tree::resource& r, rt::event& done) -> rt::task<> {
      r.acquire();
      co_await instrument(done.wait(), span("a waits").waits_for(std::string("b")));
      r.release();
    }(lock, release_a));
    set.spawn("b", wait_at(release_b, span("b waits").waits_for(lock)));
    set.ex.run();
    const auto formed = await_tree::find_wait_cycles(set.reg);
    REQUIRE(formed.size() == 1);
    CHECK(formed[0].tasks.size() == 2);
    release_a.set();
    release_b.set();
    set.ex.run();
    REQUIRE(await_tree::find_wait_cycles(set.reg).empty());
  }
  stop = true;
  analyser.join();
  dumper.join();
  CHECK(bad_cycles.load() == 0);
  WARN("other threads saw the cycle " << cycles_seen.load() << " times in " << rounds << " rounds");
}
