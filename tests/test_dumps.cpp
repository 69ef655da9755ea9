// SPDX-License-Identifier: Apache-2.0
// Dumps with options (order, limit, JSON), grouped dumps and the stall
// watchdog, on the manual clock. Assertions stay on the test thread.

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace test;
using await_tree::dump_format;
using await_tree::dump_options;
using await_tree::dump_order;
using await_tree::instrument;
using nlohmann::json;

namespace {

rt::task<> wait_at(rt::event& done, await_tree::span where) {
  co_await instrument(done.wait(), std::move(where));
}

rt::task<> sleep_then_wait(rt::executor& ex, std::chrono::nanoseconds delay, rt::event& done,
                           await_tree::span where) {
  co_await instrument(ex.sleep(delay), "warm up");
  co_await instrument(done.wait(), std::move(where));
}

/// Tasks on one executor and one registry, ended (so that nothing leaks)
/// when it goes.
struct task_set {
  await_tree::registry reg = manual_registry();
  rt::executor ex{true};
  rt::event done;

  template <class Key>
  void spawn(Key key, await_tree::span root, rt::task<> body) {
    rt::spawn(ex, reg.register_task(std::move(key), std::move(root)).instrument(std::move(body)));
  }
  task_set() = default;
  task_set(const task_set&) = delete;
  task_set& operator=(const task_set&) = delete;
  ~task_set() {
    done.set();
    ex.run();
  }
};

/// Reads back what `write` writes to a temporary FILE.
std::string written_to_file(const std::function<void(std::FILE*)>& write) {
  std::FILE* file = std::tmpfile();
  if (file == nullptr) throw std::runtime_error("tmpfile failed");
  write(file);
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text += static_cast<char>(c);
  std::fclose(file);
  return text;
}

/// Keys "task 10", "task 9", "task 2", "task 1": waiting 1 s at a node, 5 s
/// at a node, at the root only, and at a long-running node.
struct four_tasks : task_set {
  four_tasks() {
    spawn(std::string("task 10"), "ten", sleep_then_wait(ex, 4s, done, "read"));
    spawn(std::string("task 9"), "nine", wait_at(done, "write"));
    spawn(std::string("task 1"), "one", wait_at(done, await_tree::span("serve").long_running()));
    ex.run_until(5s);
  }
  const await_tree::tree_root two = reg.register_task(std::string("task 2"), "two");
};

}  // namespace

TEST_CASE("dumps list keys in natural order, or the longest-waiting first", "[dump]") {
  four_tasks t;
  CHECK(await_tree::dump_to_string(dump_options{.source = t.reg}) ==
        "[task 1]\none [5.000s]\n  serve [5.000s]\n\n"
        "[task 2]\ntwo [5.000s]\n\n"
        "[task 9]\nnine [5.000s]\n  write [5.000s]\n\n"
        "[task 10]\nten [5.000s]\n  read [1.000s]\n");  // a blank line between trees only
  const std::string by_wait =
      await_tree::dump_to_string({.source = t.reg, .order = dump_order::longest_waiting_first});
  CHECK(by_wait.find("[task 9]") < by_wait.find("[task 10]"));
  CHECK(by_wait.find("[task 10]") < by_wait.find("[task 1]"));  // waiting 0: by key
  CHECK(by_wait.find("[task 1]") < by_wait.find("[task 2]"));
  CHECK(await_tree::longest_wait(*t.reg.get(std::string("task 10"))) == 1s);
  CHECK(await_tree::longest_waiting_leaf(*t.reg.get(std::string("task 1"))) == nullptr);
}

TEST_CASE("a dump limit prints the first trees and counts the rest", "[dump]") {
  four_tasks t;
  const dump_options options{
      .source = t.reg, .order = dump_order::longest_waiting_first, .limit = 2};
  CHECK(await_tree::dump_to_string(options) ==
        "[task 9]\nnine [5.000s]\n  write [5.000s]\n\n"
        "[task 10]\nten [5.000s]\n  read [1.000s]\n\n"
        "... and 2 more tasks (limit 2)\n");

  dump_options json_options = options;
  json_options.format = dump_format::json;
  const json parsed = json::parse(await_tree::dump_to_string(json_options));
  REQUIRE(parsed["tasks"].size() == 2);
  CHECK(parsed["tasks"][0]["key"] == "task 9");
  CHECK(parsed["tasks"][0]["tree"]["tree"]["children"][0]["span"]["name"] == "write");
  CHECK(parsed["tasks"][1]["key"] == "task 10");
  CHECK(parsed["omitted_tasks"] == 2);

  CHECK(await_tree::dump_to_string({.source = t.reg, .limit = 0}) ==
        "... and 4 more tasks (limit 0)\n");
}

TEST_CASE("a dump goes to a FILE or a stream as dump_to_string() makes it", "[dump]") {
  four_tasks t;
  const dump_options options{.source = t.reg, .limit = 3};
  const std::string expected = await_tree::dump_to_string(options);
  CHECK(written_to_file([&](std::FILE* f) { await_tree::dump(f, options); }) == expected);
  std::ostringstream stream;
  await_tree::dump(stream, options);
  CHECK(stream.str() == expected);
  CHECK(written_to_file([&](std::FILE* f) { await_tree::dump(t.reg, f); }) ==
        await_tree::dump_to_string(t.reg));
}

TEST_CASE("mask_digits replaces each run of digits with #", "[dump][grouped]") {
  CHECK(await_tree::mask_digits("read block 1234 of 7") == "read block # of #");
  CHECK(await_tree::mask_digits("42") == "#");
  CHECK(await_tree::mask_digits("no digits") == "no digits");
  CHECK(await_tree::mask_digits("").empty());
}

namespace {

/// 1,000 tasks keyed 0..999 of three shapes, by the last digit of the key:
/// 0-4 read a block, 5-7 join a fetch and a heartbeat, 8-9 idle. Each node
/// starts 0, 1 or 2 s in ((key / 10) % 3), and the dump is at 10 s.
struct thousand_tasks : task_set {
  thousand_tasks() {
    for (int key = 0; key < 1000; ++key) {
      const auto delay = std::chrono::seconds((key / 10) % 3);
      spawn(key, fmt::format("worker {}", key), body(key, delay));
    }
    ex.run_until(10s);
  }

  rt::task<> body(int key, std::chrono::nanoseconds delay) {
    co_await instrument(ex.sleep(delay), "warm up");
    if (key % 10 < 5) {
      co_await instrument(done.wait(), fmt::format("read block {}", key * 7));
    } else if (key % 10 < 8) {
      co_await instrument(rt::when_all(wait_at(done, fmt::format("fetch {}", key)),
                                       wait_at(done, await_tree::span("heartbeat").long_running())),
                          "join");
    } else {
      co_await instrument(done.wait(), "idle");
    }
  }
};

}  // namespace

TEST_CASE("a grouped dump shows each shape once, most common first", "[dump][grouped]") {
  thousand_tasks t;
  const dump_options options{
      .source = t.reg, .grouped = true, .grouping = {.normalize = &await_tree::mask_digits}};
  CHECK(await_tree::dump_to_string(options) ==
        "[500 tasks: 0, 1, 2, 3, 4, ...]\n"
        "worker # [10.000s]\n"
        "  read block # [!!! min 8.000s, median 9.000s, max 10.000s]\n"
        "\n"
        "[300 tasks: 5, 6, 7, 15, 16, ...]\n"
        "worker # [10.000s]\n"
        "  join [!!! min 8.000s, median 9.000s, max 10.000s]\n"
        "    fetch # [!!! min 8.000s, median 9.000s, max 10.000s]\n"
        "    heartbeat [min 8.000s, median 9.000s, max 10.000s]\n"
        "\n"
        "[200 tasks: 8, 9, 18, 19, 28, ...]\n"
        "worker # [10.000s]\n"
        "  idle [!!! min 8.000s, median 9.000s, max 10.000s]\n");

  const auto trees = t.reg.collect_all();
  const auto groups = await_tree::group_trees(trees, options.grouping);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].keys.size() == 500);
  CHECK(groups[1].keys.size() == 300);
  CHECK(groups[2].keys.size() == 200);
  CHECK(await_tree::group_trees(trees).size() == 1000);  // names as they are: all differ
}

TEST_CASE("a grouped dump's limit counts the groups and tasks left out", "[dump][grouped]") {
  thousand_tasks t;
  const dump_options options{.source = t.reg,
                             .grouped = true,
                             .grouping = {.normalize = &await_tree::mask_digits, .keys_shown = 2},
                             .limit = 1};
  CHECK(await_tree::dump_to_string(options) ==
        "[500 tasks: 0, 1, ...]\n"
        "worker # [10.000s]\n"
        "  read block # [!!! min 8.000s, median 9.000s, max 10.000s]\n"
        "\n"
        "... and 2 more groups of 500 tasks (limit 1)\n");
}

TEST_CASE("a grouped dump in JSON", "[dump][grouped][json]") {
  thousand_tasks t;
  const json parsed =
      json::parse(await_tree::dump_to_string({.source = t.reg,
                                              .format = dump_format::json,
                                              .order = dump_order::longest_waiting_first,
                                              .grouped = true,
                                              .grouping = {.normalize = &await_tree::mask_digits},
                                              .limit = 2}));
  REQUIRE(parsed["groups"].size() == 2);
  CHECK(parsed["omitted_groups"] == 1);
  CHECK(parsed["omitted_tasks"] == 200);
  const json& join = parsed["groups"][1];
  CHECK(join["count"] == 300);
  // Longest-waiting first: the tasks whose nodes started at 0 s lead.
  CHECK(join["keys"] == json::array({"5", "6", "7", "35", "36"}));
  CHECK(join["tree"]["span"]["name"] == "worker #");
  CHECK(join["detached"].empty());
  const json& heartbeat = join["tree"]["children"][0]["children"][1];
  CHECK(heartbeat["span"]["name"] == "heartbeat");
  CHECK(heartbeat["span"]["is_long_running"] == true);
  CHECK(heartbeat["is_current"] == false);
  CHECK(heartbeat["elapsed_ns"] ==
        json({{"min", 8'000'000'000}, {"median", 9'000'000'000}, {"max", 10'000'000'000}}));
}

TEST_CASE("groups keep detached subtrees and current marks apart", "[dump][grouped]") {
  using await_tree::span;
  using await_tree::tree;
  const auto make = [](bool detached, bool current) {
    return tree({{1, span("root").long_running(), 3s, 0, false, false},
                 {2, "work", 2s, detached ? 0U : 1U, current, detached}},
                1, 10s);
  };
  std::vector<std::pair<await_tree::any_key, tree>> trees;
  trees.emplace_back(await_tree::any_key(1), make(true, false));
  trees.emplace_back(await_tree::any_key(2), make(false, false));
  trees.emplace_back(await_tree::any_key(3), make(false, true));
  trees.emplace_back(await_tree::any_key(4), make(true, false));
  const auto groups = await_tree::group_trees(trees);
  REQUIRE(groups.size() == 3);
  std::string text;
  await_tree::detail::append_group_text(text, groups[0], 5, {}, await_tree::unlimited);
  CHECK(text == "[2 tasks: 1, 4]\nroot [3.000s]\n[Detached]\n  work [2.000s]\n");
  text.clear();
  await_tree::detail::append_group_text(text, groups[2], 5, {}, await_tree::unlimited);
  CHECK(text == "[1 task: 3]\nroot [3.000s]\n  work [2.000s]  <== current\n");
  text.clear();
  await_tree::detail::append_group_text(text, groups[0], 0, {}, await_tree::unlimited);
  CHECK_THAT(text, Catch::StartsWith("[2 tasks]\n"));
}

namespace {

/// The watchdog's reports, gathered from whichever thread makes them.
class report_log {
 public:
  std::function<void(const await_tree::stall&)> callback() {
    return [this](const await_tree::stall& s) {
      const std::lock_guard lock(mutex_);
      lines_.push_back(fmt::format("{} at {} for {}ms", s.key, s.node.span.name(),
                                   s.node.elapsed.count() / 1'000'000));
    };
  }
  std::vector<std::string> lines() const {
    const std::lock_guard lock(mutex_);
    return lines_;
  }
  /// Waits until `line` has been reported (a bound for a broken watchdog,
  /// not a timing expectation).
  bool wait_for(const std::string& line) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto seen = lines();
      if (std::find(seen.begin(), seen.end(), line) != seen.end()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

rt::task<> stuck_twice(rt::event& first, rt::event& second) {
  co_await instrument(first.wait(), "read block 7");
  co_await instrument(second.wait(), "write block 7");
}

}  // namespace

TEST_CASE("the watchdog reports a stuck task once per stall, never a long-running one",
          "[watchdog]") {
  task_set t;
  rt::event first;
  t.spawn(std::string("stuck"), "stuck", stuck_twice(first, t.done));
  t.spawn(std::string("serving"), "serving",
          wait_at(t.done, await_tree::span("heartbeat").long_running()));
  const await_tree::tree_root idle = t.reg.register_task(std::string("idle"), "idle");
  t.ex.run_until(0s);
  report_log log;
  await_tree::watchdog dog({.source = t.reg, .interval = 0ms, .on_stall = log.callback()});

  rt::manual_clock::set(9s);
  CHECK(dog.check() == 0);  // below the registry's 10 s threshold
  rt::manual_clock::set(11s);
  CHECK(dog.check() == 1);
  CHECK(dog.check() == 0);
  rt::manual_clock::set(60s);
  CHECK(dog.check() == 0);
  CHECK(log.lines() == std::vector<std::string>{"stuck at read block 7 for 11000ms"});

  first.set();  // progress, then stuck at the next node: a new stall
  t.ex.run_until(60s);
  rt::manual_clock::set(69s);
  CHECK(dog.check() == 0);
  rt::manual_clock::set(71s);
  CHECK(dog.check() == 1);
  CHECK(log.lines().back() == "stuck at write block 7 for 11000ms");
  CHECK(log.lines().size() == 2);
}

TEST_CASE("the watchdog's threshold can be set apart from the registry's", "[watchdog]") {
  task_set t;
  t.spawn(1, "quick", wait_at(t.done, "read"));
  t.ex.run_until(2s);
  report_log log;
  await_tree::watchdog dog(
      {.source = t.reg, .interval = 0ms, .threshold = 1s, .on_stall = log.callback()});
  CHECK(dog.check() == 1);
  CHECK(log.lines() == std::vector<std::string>{"1 at read for 2000ms"});
}

TEST_CASE("the watchdog's thread scans until stopped", "[watchdog][threads]") {
  task_set t;
  rt::event late;
  t.spawn(std::string("early"), "early", wait_at(t.done, "read"));
  t.spawn(std::string("serving"), "serving",
          wait_at(t.done, await_tree::span("heartbeat").long_running()));
  t.ex.run_until(5s);
  t.spawn(std::string("late"), "late", wait_at(t.done, "write"));
  t.ex.run_until(5s);
  report_log log;
  {
    await_tree::watchdog dog({.source = t.reg, .interval = 1ms, .on_stall = log.callback()});
    rt::manual_clock::set(12s);
    REQUIRE(log.wait_for("early at read for 12000ms"));
    // "late" stalls only now: the scan that reports it sees "early" again.
    rt::manual_clock::set(16s);
    REQUIRE(log.wait_for("late at write for 11000ms"));
  }  // joins the thread
  const auto lines = log.lines();
  CHECK(std::count(lines.begin(), lines.end(), "early at read for 12000ms") == 1);
  CHECK(lines.size() == 2);
  CHECK_THROWS_AS(await_tree::watchdog({.interval = -1ms}), std::invalid_argument);
}

TEST_CASE("print_stall names the task, the wait and the node, then the tree", "[watchdog]") {
  task_set t;
  t.spawn(std::string("worker 1"), "worker 1", wait_at(t.done, "read\nblock"));
  t.ex.run_until(12s);
  const auto snapshot = t.reg.get(std::string("worker 1"));
  REQUIRE(snapshot);
  const await_tree::stall s{await_tree::any_key(std::string("worker 1")), *snapshot,
                            snapshot->nodes()[1]};
  CHECK(written_to_file([&](std::FILE* f) { await_tree::print_stall(s, f); }) ==
        "await-tree watchdog: task [worker 1] has been waiting 12.000s at \"read\\nblock\"\n"
        "worker 1 [12.000s]\n"
        "  read\\nblock [!!! 12.000s]\n\n");
}
