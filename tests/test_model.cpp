// SPDX-License-Identifier: Apache-2.0
// Model-based randomized test: random task programs (tests/model/program.hpp)
// run step by step on a deterministic scheduler, and after every step, and
// at every probe inside a running coroutine, each task's tree must match the
// reference model (tests/model/model.hpp): same nodes, parents, detached
// roots and current markers; at the end no task is left in the registry.
//
//   await_tree_model_tests                        the CI run (default_programs)
//   AWAIT_TREE_MODEL_SEED=<n> await_tree_model_tests      replays one program
//   AWAIT_TREE_MODEL_PROGRAMS=100000 await_tree_model_tests   a soak run
//   AWAIT_TREE_MODEL_BASE_SEED=<n>                 another series of programs
//
// Program i of a run uses seed base + i; a failure prints the seed, the
// program, the step and both trees.

#include "model/interpreter.hpp"
#include "model/program.hpp"
#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr std::uint64_t default_base_seed = 20261127;
constexpr std::uint64_t default_programs = 3000;

std::optional<std::uint64_t> from_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::stoull(value);
}

struct totals {
  std::uint64_t programs = 0;
  std::uint64_t steps = 0;
  std::uint64_t snapshots = 0;
};

/// Runs the program of `seed`; an empty string when it matches the model
/// throughout, else the failure report.
std::string check_program(std::uint64_t seed, totals& sum, model::integration mode) {
  model::choice_source choices(seed);
  const model::program p = model::generator(choices).generate();
  model::interpreter run(p, choices, mode);
  const std::optional<model::mismatch> found = run.run();
  ++sum.programs;
  sum.steps += run.counts().steps;
  sum.snapshots += run.counts().snapshots;
  if (!found) return {};
  return "seed " + std::to_string(seed) +
         " (replay: AWAIT_TREE_MODEL_SEED=" + std::to_string(seed) + ")\nprogram:\n" +
         model::to_string(p) + "step " + std::to_string(found->step) + ", " + found->where +
         "\nexpected:\n" + found->expected.to_string() + "actual:\n" + found->actual;
}

/// Runs the random programs (or the one of AWAIT_TREE_MODEL_SEED) in `mode`.
void check_random_programs(model::integration mode) {
  totals sum;
  if (const auto seed = from_env("AWAIT_TREE_MODEL_SEED")) {
    const std::string failure = check_program(*seed, sum, mode);
    INFO(failure);
    CHECK(failure.empty());
    return;
  }
  const std::uint64_t base = from_env("AWAIT_TREE_MODEL_BASE_SEED").value_or(default_base_seed);
  const std::uint64_t programs = from_env("AWAIT_TREE_MODEL_PROGRAMS").value_or(default_programs);
  std::uint64_t failures = 0;
  for (std::uint64_t i = 0; i < programs && failures < 3; ++i) {
    const std::string failure = check_program(base + i, sum, mode);
    if (!failure.empty()) {
      ++failures;
      FAIL_CHECK(failure);
    }
  }
  std::cout << "model: " << sum.programs << " programs, " << sum.steps << " steps, "
            << sum.snapshots << " snapshots compared\n";
}

}  // namespace

TEST_CASE("random programs: every snapshot matches the reference model", "[model]") {
  check_random_programs(model::integration::promise_mixin);
}

TEST_CASE("random programs without integration: no snapshot is ever wrong", "[model]") {
  check_random_programs(model::integration::none);
}

namespace {

template <class T = void>
using traced_task = rt::basic_task<T, await_tree::promise_mixin>;

traced_task<> look_at_own_tree(std::string& seen) {
  seen = await_tree::current_tree()->to_string();
  co_return;
}

traced_task<> await_plainly(std::string& seen) { co_await look_at_own_tree(seen); }

}  // namespace

// Found by the model test (any program whose probe runs in a coroutine awaited
// plainly). The mixin tracks `co_await child()` as a node-less await, which
// counted as suspended at its position while pending, so that
// tree_state::shows_current() hid the position's marker, taking the child's
// code for the await's glue. But the child runs right there: a plain await of
// a coroutine adds no node. Fixed: a node-less await whose await_suspend may
// transfer (returns a handle) does not count as suspended.
TEST_CASE("regression: code of a child coroutine awaited plainly is marked current",
          "[model][regression]") {
  test::single_task t;
  std::string direct;
  std::string plain;
  auto body = [](std::string& direct_seen, std::string& plain_seen) -> traced_task<> {
    co_await await_tree::instrument(look_at_own_tree(direct_seen), "child");
    co_await await_tree::instrument(await_plainly(plain_seen), "child");
  };
  t.spawn(body(direct, plain));
  REQUIRE(t.finishes());
  CHECK(direct == "root [0ns]\n  child [0ns]  <== current\n");
  CHECK(plain == "root [0ns]\n  child [0ns]  <== current\n");
}

namespace {

rt::task<> wait_in_child(rt::event& e) { co_await await_tree::instrument(e.wait(), "child waits"); }

test::fire_and_forget start_child_work(rt::event& e) {
  co_await await_tree::instrument(wait_in_child(e), "spawned");
}

}  // namespace

// Found by the model test (a node missing). No integration needed: every
// await is instrumented. An eager coroutine started inline handed over to a
// child coroutine by symmetric transfer, which set the context entry's
// `running` to the child; when the child suspended, end_suspend() took it for
// the coroutine of the activation and popped the entry instead of restoring
// the caller's, whose next instrumented await then added no node. Fixed: the
// transfer starts a call (context.hpp), which ends when the child suspends.
TEST_CASE("regression: work spawned inline that awaits a child keeps its caller's context",
          "[model][regression]") {
  test::single_task t;
  rt::event spawned_done;
  rt::event caller_done;
  auto body = [](rt::event& work, rt::event& own) -> rt::task<> {
    start_child_work(work);
    co_await await_tree::instrument(own.wait(), "caller goes on");
  };
  t.spawn(body(spawned_done, caller_done));
  t.ex.run();
  CHECK(t.text() ==
        "root [0ns]\n"
        "  spawned [0ns]\n"
        "    child waits [0ns]\n"
        "  caller goes on [0ns]\n");
  spawned_done.set();
  caller_done.set();
  CHECK(t.finishes());
}

namespace {

test::fire_and_forget start_work(rt::event& e) {
  co_await await_tree::instrument(e.wait(), "spawned");
}

rt::task<> branch_that_spawns(rt::event& work, rt::event& own) {
  start_work(work);
  co_await await_tree::instrument(own.wait(), "branch goes on");
}

}  // namespace

// Found by the model test (the marker at the join while a branch's code
// runs). While a combinator's await_suspend starts a branch, the context entry
// is `nested` with `base` at the combinator's node. An eager coroutine started
// by that branch suspended with nested still set, so end_suspend() sent the
// context back to `base` (the join) instead of to the branch's node: the
// branch's next await landed under the join. Fixed: the instrumented branch's
// transfer starts a call, whose entry is not nested.
TEST_CASE("regression: work spawned by a branch as it starts keeps the branch's position",
          "[model][regression]") {
  test::single_task t;
  rt::event spawned_done;
  rt::event branch_done;
  auto body = [](rt::event& work, rt::event& own) -> rt::task<> {
    co_await await_tree::instrument(
        rt::when_all(await_tree::instrument(branch_that_spawns(work, own), "branch")), "join");
  };
  t.spawn(body(spawned_done, branch_done));
  t.ex.run();
  CHECK(t.text() ==
        "root [0ns]\n"
        "  join [0ns]\n"
        "    branch [0ns]\n"
        "      spawned [0ns]\n"
        "      branch goes on [0ns]\n");
  spawned_done.set();
  branch_done.set();
  CHECK(t.finishes());
}

namespace {

traced_task<> completes_at_once() { co_return; }

traced_task<> plain_then_instrumented(rt::event& e) {
  co_await completes_at_once();
  co_await await_tree::instrument(e.wait(), "spawned waits");
}

model::interpret::coroutines<await_tree::promise_mixin>::detached_work start_plain_child_work(
    rt::event& e) {
  co_await plain_then_instrumented(e);
}

}  // namespace

// Found by the model test (a node missing, once the fixes above let it reach
// there). A coroutine that resumed in the activation it had suspended in took
// over the activation (`running`), though it had awaited as a nested call: an
// eager coroutine whose plain await of a child completed at once then ended
// its caller's activation at its next suspension, and the caller's next await
// added no node. Fixed: an await remembers its role (await_role) and gives it
// back when it resumes in the same activation.
TEST_CASE("regression: a nested call resuming from a plain await stays a nested call",
          "[model][regression]") {
  test::single_task t;
  rt::event spawned_done;
  rt::event caller_done;
  auto body = [](rt::event& work, rt::event& own) -> traced_task<> {
    start_plain_child_work(work);
    co_await await_tree::instrument(own.wait(), "caller goes on");
  };
  t.spawn(body(spawned_done, caller_done));
  t.ex.run();
  CHECK(t.text() ==
        "root [0ns]\n"
        "  spawned waits [0ns]\n"
        "  caller goes on [0ns]\n");
  spawned_done.set();
  caller_done.set();
  CHECK(t.finishes());
}

// Found by a soak run (AWAIT_TREE_MODEL_PROGRAMS=100000): programs whose awaits
// resume on hop threads inside calls lost their task's context. Each thread
// counted its activations' epochs from zero, so an entry pushed on one hop
// thread could pass for the activation an await had suspended in on another:
// the await took that activation for its own and gave back a role it did not
// have there. Fixed: each thread counts from a base of its own. These seeds
// name programs of the generator as it is: replay one with
// AWAIT_TREE_MODEL_SEED to see it.
TEST_CASE("regression: activations of different threads never share an epoch",
          "[model][regression]") {
  totals sum;
  for (const std::uint64_t seed : {20330335, 20339585, 20348594}) {
    const std::string failure = check_program(seed, sum, model::integration::promise_mixin);
    INFO(failure);
    CHECK(failure.empty());
  }
}

// Not part of a normal run: writes the fuzzer's seed corpus, the choices of
// the generated programs with the longest schedules among the first few
// hundred seeds (the fuzzer replays them exactly):
//   AWAIT_TREE_MODEL_CORPUS=tests/fuzz/corpus/program await_tree_model_tests "[.corpus]"
TEST_CASE("write the fuzzer's seed corpus", "[.corpus]") {
  const char* dir = std::getenv("AWAIT_TREE_MODEL_CORPUS");
  REQUIRE(dir != nullptr);
  constexpr std::size_t files = 8;
  constexpr std::uint64_t candidates = 400;
  std::vector<std::pair<std::size_t, std::uint64_t>> by_steps;  // (steps, seed)
  for (std::uint64_t seed = default_base_seed; seed < default_base_seed + candidates; ++seed) {
    model::choice_source choices(seed);
    const model::program p = model::generator(choices).generate();
    model::interpreter run(p, choices);
    REQUIRE_FALSE(run.run());
    by_steps.emplace_back(run.counts().steps, seed);
  }
  std::sort(by_steps.rbegin(), by_steps.rend());
  for (std::size_t i = 0; i < files; ++i) {
    const std::uint64_t seed = by_steps[i].second;
    model::choice_source choices(seed);
    const model::program p = model::generator(choices).generate();
    model::interpreter(p, choices).run();
    std::ofstream out(std::string(dir) + "/seed-" + std::to_string(seed), std::ios::binary);
    const std::vector<std::uint8_t>& bytes = choices.recorded();
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
}
