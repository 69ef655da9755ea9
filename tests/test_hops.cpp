// SPDX-License-Identifier: Apache-2.0
// Tasks that change threads at plain awaits, with no context_scope anywhere:
// current_tree() after a hop, and tasks waking each other inline on two
// threads while another thread snapshots. Built twice, at -O1 and at -O2
// (tests/CMakeLists.txt): clang before 19 may keep a thread-local's address
// across a suspension point (LLVM #47179), differently at each level, which
// ThreadSanitizer reports as a race and which otherwise reads another
// thread's state.

#include "integration_modes.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/thread_pool.hpp"
#include "snapshotter.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace test;
using await_tree::instrument;

TEST_CASE("an integrated task knows its tree in its code, wherever it resumes", "[hops]") {
  await_tree::registry reg = manual_registry();
  rt::thread_pool pool(2);
  std::atomic<int> checks_passed{0};
  rt::event ev;
  auto body = [&]() -> rt::task<> {
    for (int i = 0; i < 200; ++i) {
      co_await pool.schedule();  // a plain await that hops threads
      const auto t = await_tree::current_tree();
      if (t && t->nodes().front().span.name() == "hopper") ++checks_passed;
    }
    ev.set();
  };
  auto waiter = [&]() -> rt::task<> { co_await instrument(ev.wait(), "wait"); };
  rt::executor ex(true);
  rt::spawn(ex, reg.register_task(1, "waiter").instrument(waiter()));
  ex.run();
  rt::spawn(ex, reg.register_task(0, "hopper").instrument(body()));
  ex.run();
  REQUIRE(eventually([&] { return !reg.get(0); }));
  CHECK(checks_passed == 200);
  CHECK_FALSE(await_tree::current_tree());
}

namespace {

constexpr int ring_size = 12;
constexpr int rounds = 150;

/// Task `id`'s node of a role: "t<id> <role>". Which tree may hold a node,
/// and under which nodes, follows from its name.
std::string node_name(int id, std::string_view role) {
  return "t" + std::to_string(id) + " " + std::string(role);
}

/// A ring of tasks: in each round, every task wakes the next one's event
/// inline (on whichever thread it runs) and waits for its own.
/// The pool is declared last: its threads stop before the events go.
struct ring {
  std::vector<std::unique_ptr<rt::event>> events;
  rt::thread_pool pool{2};

  ring() {
    for (int i = 0; i < ring_size * rounds; ++i) events.push_back(std::make_unique<rt::event>());
  }
  rt::event& event(int id, int round) { return *events[round * ring_size + id % ring_size]; }
};

template <class Mode>
typename Mode::template task<> leaf_work(rt::thread_pool& pool, int id) {
  co_await pool.schedule();
  co_await instrument(pool.schedule(), node_name(id, "leaf"));
}

template <class Mode>
typename Mode::template task<> ring_member(ring& r, int id) {
  for (int round = 0; round < rounds; ++round) {
    co_await r.pool.schedule();
    r.event(id + 1, round).set();
    co_await instrument(
        Mode::when_all(instrument(r.event(id, round).wait(), node_name(id, "wait")),
                       instrument(leaf_work<Mode>(r.pool, id), node_name(id, "child"))),
        node_name(id, "join"));
  }
}

/// The roles a node of each role may sit under: its parent first, then its
/// other ancestors (a tree that is not exact may skip a level).
std::vector<std::string_view> ancestors_of(std::string_view role) {
  if (role == "join") return {"root"};
  if (role == "wait" || role == "child") return {"join", "root"};
  if (role == "leaf") return {"child", "join", "root"};
  return {};
}

/// Whether every node of task `key`'s tree is one of that task's, under its
/// parent (`exact`) or under one of its ancestors.
bool holds_only_own_nodes(const await_tree::any_key& key, const await_tree::tree& t, bool exact) {
  const int* id = key.get<int>();
  if (id == nullptr) return false;
  const std::string prefix = node_name(*id, "");
  const auto& nodes = t.nodes();
  auto role_of = [&](std::size_t i) -> std::string_view {
    if (i == 0) return "root";
    const std::string_view name = nodes[i].span.name();
    return name.starts_with(prefix) ? name.substr(prefix.size()) : "<another task's>";
  };
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    const std::vector<std::string_view> allowed = ancestors_of(role_of(i));
    if (allowed.empty()) return false;
    if (nodes[i].is_detached_root) continue;
    std::size_t parent = i - 1;
    while (nodes[parent].depth >= nodes[i].depth) --parent;
    const std::string_view parent_role = role_of(parent);
    const auto end = exact ? allowed.begin() + 1 : allowed.end();
    if (std::find(allowed.begin(), end, parent_role) == end) return false;
  }
  return true;
}

}  // namespace

TEMPLATE_TEST_CASE("tasks waking each other inline on two threads never show another's node",
                   "[hops][threads]", integrated, not_integrated) {
  await_tree::registry reg = manual_registry();
  std::atomic<long> nodes_seen{0};
  snapshotter watcher(reg, [&](const await_tree::any_key& key, const await_tree::tree& t) {
    nodes_seen += static_cast<long>(t.nodes().size()) - 1;
    return holds_only_own_nodes(key, t, TestType::exact);
  });
  // Laps of the ring until the snapshots have seen enough of it.
  const auto seen_enough = [&] {
    return watcher.snapshots() >= 1000 && (nodes_seen > 0 || !TestType::exact);
  };
  for (int lap = 0; lap < 200 && !seen_enough(); ++lap) {
    ring r;
    rt::executor ex(true);
    for (int id = 0; id < ring_size; ++id) {
      rt::spawn(ex, reg.register_task(id, "root").instrument(ring_member<TestType>(r, id)));
    }
    ex.run();
    REQUIRE(eventually([&] { return reg.collect_all().empty(); }));
  }
  watcher.stop();
  CHECK(watcher.malformed() == 0);
  CHECK(watcher.snapshots() >= 1000);
  if (TestType::exact) CHECK(nodes_seen > 0);
}
