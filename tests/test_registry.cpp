// SPDX-License-Identifier: Apache-2.0
// Registration, lookup, replacement and lifetimes, without running tasks.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace test;
using await_tree::any_key;
using await_tree::registry;
using await_tree::tree_root;

TEST_CASE("a registered task is listed until its root ends", "[registry]") {
  registry reg = manual_registry();
  {
    const tree_root root = reg.register_task(42, "actor 42");
    CHECK(text_of(reg, 42) == "actor 42 [0ns]\n");
    CHECK(reg.get(42)->active_node_count() == 1);
    CHECK_FALSE(reg.get(43));
    CHECK(reg.collect_all().size() == 1);
  }
  CHECK_FALSE(reg.get(42));
  CHECK(reg.collect_all().empty());
}

TEST_CASE("collect<K> returns exactly the keys of type K", "[registry]") {
  registry reg = manual_registry();
  const auto a = reg.register_task(1, "int 1");
  const auto b = reg.register_task(2, "int 2");
  const auto c = reg.register_task(std::string("one"), "string one");
  const auto d = reg.register_anonymous("anonymous");

  auto ints = reg.collect<int>();
  std::sort(ints.begin(), ints.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  REQUIRE(ints.size() == 2);
  CHECK(ints[0].first == 1);
  CHECK(ints[1].second.to_string() == "int 2 [0ns]\n");

  const auto strings = reg.collect<std::string>();
  REQUIRE(strings.size() == 1);
  CHECK(strings[0].first == "one");

  const auto anonymous = reg.collect_anonymous();
  REQUIRE(anonymous.size() == 1);
  CHECK(anonymous[0].to_string() == "anonymous [0ns]\n");

  const auto all = reg.collect_all();
  CHECK(all.size() == 4);
  CHECK(std::count_if(all.begin(), all.end(),
                      [](const auto& e) { return e.first.is_anonymous(); }) == 1);
  CHECK(reg.collect<long>().empty());
}

TEST_CASE("text keys are string keys, whatever form they are given in", "[registry]") {
  registry reg = manual_registry();
  const auto literal = reg.register_task("worker", "from a literal");
  const std::string runtime_text = "pool 7";
  const auto pointer = reg.register_task(runtime_text.c_str(), "from a char pointer");
  const auto view = reg.register_task(std::string_view("listener"), "from a view");

  CHECK(literal.key().get<std::string>() != nullptr);
  CHECK(*literal.key().get<std::string>() == "worker");
  CHECK(text_of(reg, std::string("worker")) == "from a literal [0ns]\n");
  CHECK(text_of(reg, std::string_view("worker")) == "from a literal [0ns]\n");
  CHECK(text_of(reg, "worker") == "from a literal [0ns]\n");
  CHECK(text_of(reg, "pool 7") == "from a char pointer [0ns]\n");
  CHECK(text_of(reg, std::string("listener")) == "from a view [0ns]\n");

  // Found by content, not by the address of the text.
  char same_text[] = "worker";
  CHECK(reg.get(static_cast<char*>(same_text)).has_value());
  CHECK_FALSE(reg.get(std::string_view("worke")));
  CHECK_FALSE(reg.get("workers"));

  auto strings = reg.collect<std::string>();
  std::sort(strings.begin(), strings.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  REQUIRE(strings.size() == 3);
  CHECK(strings[0].first == "listener");
  CHECK(strings[1].first == "pool 7");
  CHECK(strings[2].first == "worker");

  // A literal replaces the task of an equal std::string, and the other way round.
  const auto replacement = reg.register_task(std::string("worker"), "replacement");
  CHECK(text_of(reg, "worker") == "replacement [0ns]\n");
  CHECK(reg.collect<std::string>().size() == 3);
  CHECK(any_key("x") == any_key(std::string("x")));
  CHECK(any_key("x").hash() == any_key(std::string_view("x")).hash());
}

TEST_CASE("a char array key is the text before its first null character", "[registry]") {
  registry reg = manual_registry();
  char buffer[16] = "shard 3";  // a buffer filled at run time, longer than its text
  const auto from_buffer = reg.register_task(buffer, "from a buffer");
  const char full[] = "full";
  const auto from_full = reg.register_task(full, "from a full array");
  char cut[8] = {'a', 'b', '\0', 'c'};
  const auto from_cut = reg.register_task(cut, "from an array cut short");
  const char unterminated[3] = {'x', 'y', 'z'};  // read no further than its end
  const auto from_unterminated = reg.register_task(unterminated, "from an unterminated array");

  REQUIRE(from_buffer.key().get<std::string>() != nullptr);
  CHECK(*from_buffer.key().get<std::string>() == "shard 3");
  CHECK(*from_full.key().get<std::string>() == "full");
  CHECK(*from_cut.key().get<std::string>() == "ab");
  CHECK(*from_unterminated.key().get<std::string>() == "xyz");
  CHECK(text_of(reg, std::string("shard 3")) == "from a buffer [0ns]\n");
  CHECK(text_of(reg, std::string_view("full")) == "from a full array [0ns]\n");
  CHECK(text_of(reg, "ab") == "from an array cut short [0ns]\n");
  // Lookups read arrays the same way: no further than their end.
  CHECK(text_of(reg, unterminated) == "from an unterminated array [0ns]\n");
  CHECK(text_of(reg, cut) == "from an array cut short [0ns]\n");
  CHECK(text_of(reg, buffer) == "from a buffer [0ns]\n");
}

TEST_CASE("a null char pointer is refused as a key", "[registry]") {
  registry reg = manual_registry();
  const char* none = nullptr;
  CHECK_THROWS_AS(reg.register_task(none, "nothing"), std::invalid_argument);
  CHECK_THROWS_AS(reg.get(none), std::invalid_argument);
  CHECK(reg.collect_all().empty());
}

TEST_CASE("of the live tasks under one key, the newest is shown", "[registry]") {
  registry reg = manual_registry();
  std::optional<tree_root> first = reg.register_task(7, "first");
  std::optional<tree_root> second = reg.register_task(7, "second");
  CHECK(text_of(reg, 7) == "second [0ns]\n");
  CHECK(reg.collect_all().size() == 1);
  second.reset();  // the older task, still running, shows again
  CHECK(text_of(reg, 7) == "first [0ns]\n");
  second = reg.register_task(7, "third");
  first.reset();  // the shadowed root ends: it must not remove its successor
  CHECK(text_of(reg, 7) == "third [0ns]\n");
  CHECK(reg.collect<int>().size() == 1);
}

TEST_CASE("the newest registration of a key wins whichever thread made it", "[registry]") {
  // Registrations on different threads are ordered by the registry's clock.
  registry reg = manual_registry();
  const auto name_of_worker = [&reg] {
    const auto t = reg.get("worker");
    return t ? std::string(t->nodes().front().span.name()) : std::string("none");
  };
  std::optional<tree_root> here = reg.register_task(std::string("worker"), "here");
  rt::manual_clock::advance(1ms);
  std::optional<tree_root> there;
  std::thread([&] { there = reg.register_task("worker", "there"); }).join();
  CHECK(name_of_worker() == "there");
  REQUIRE(reg.collect<std::string>().size() == 1);
  CHECK(reg.collect<std::string>().front().second.nodes().front().span.name() == "there");
  rt::manual_clock::advance(1ms);
  here = reg.register_task("worker", "here again");
  CHECK(name_of_worker() == "here again");
  here.reset();
  CHECK(name_of_worker() == "there");
  there.reset();
  CHECK(name_of_worker() == "none");
}

namespace {

/// A key type whose values all hash alike: lookups and collections must
/// still tell its keys apart by value.
struct same_hash_key {
  int id;
  friend bool operator==(same_hash_key, same_hash_key) = default;
};

}  // namespace

template <>
struct std::hash<same_hash_key> {
  std::size_t operator()(same_hash_key) const noexcept { return 42; }
};

template <>
struct fmt::formatter<same_hash_key> : fmt::formatter<int> {
  template <class FormatContext>
  auto format(same_hash_key k, FormatContext& ctx) const {
    return fmt::formatter<int>::format(k.id, ctx);
  }
};

TEST_CASE("keys with equal hashes are told apart, whichever of them ends first", "[registry]") {
  registry reg = manual_registry();
  constexpr int keys = 40;
  std::vector<std::optional<tree_root>> roots;
  for (int id = 0; id < keys; ++id) roots.emplace_back(reg.register_task(same_hash_key{id}, "old"));
  // Every third key is registered again: the newer task shadows the older.
  for (int id = 0; id < keys; id += 3)
    roots.emplace_back(reg.register_task(same_hash_key{id}, "new"));
  const auto name_of = [&reg](int id) {
    const auto t = reg.get(same_hash_key{id});
    return t ? std::string(t->nodes().front().span.name()) : std::string("none");
  };
  // Roots end in a random order; each end must leave every other key
  // findable (an entry from the middle of its shard's list goes each time).
  std::vector<std::size_t> order(roots.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(2026));
  for (const std::size_t ending : order) {
    roots[ending].reset();
    for (int id = 0; id < keys; ++id) {
      const auto& old_root = roots[static_cast<std::size_t>(id)];
      const bool replaced = id % 3 == 0;
      const auto& new_root = replaced ? roots[keys + static_cast<std::size_t>(id / 3)] : old_root;
      const std::string expected = replaced && new_root ? "new" : (old_root ? "old" : "none");
      INFO("key " << id << " after root " << ending << " ended");
      CHECK(name_of(id) == expected);
    }
  }
  CHECK(reg.collect_all().empty());
}

namespace {

/// A key too large to be held in place, whose copy throws for a negative
/// id: the registration fails while its entry is being made.
struct fragile_key {
  int id;
  std::array<char, 40> padding{};

  explicit fragile_key(int i) : id(i) {}
  fragile_key(const fragile_key& other) : id(other.id) {
    if (id < 0) throw std::runtime_error("fragile key copied");
  }
  fragile_key& operator=(const fragile_key&) = default;
  friend bool operator==(const fragile_key& a, const fragile_key& b) { return a.id == b.id; }
};

}  // namespace

template <>
struct std::hash<fragile_key> {
  std::size_t operator()(const fragile_key& k) const noexcept { return std::hash<int>{}(k.id); }
};

template <>
struct fmt::formatter<fragile_key> : fmt::formatter<int> {
  template <class FormatContext>
  auto format(const fragile_key& k, FormatContext& ctx) const {
    return fmt::formatter<int>::format(k.id, ctx);
  }
};

TEST_CASE("a key that throws while it is stored leaves the registry as it was", "[registry]") {
  registry reg = manual_registry();
  const tree_root kept = reg.register_task(fragile_key(1), "kept");
  CHECK_THROWS_AS(reg.register_task(fragile_key(-1), "refused"), std::runtime_error);
  CHECK(reg.collect_all().size() == 1);
  const tree_root next = reg.register_task(fragile_key(2), "next");
  CHECK(text_of(reg, fragile_key(2)) == "next [0ns]\n");
  CHECK(text_of(reg, fragile_key(1)) == "kept [0ns]\n");
  CHECK(reg.collect<fragile_key>().size() == 2);
}

TEST_CASE("a root's key is its registration's, and no task's once it has ended", "[registry]") {
  registry reg = manual_registry();
  tree_root root = reg.register_task(std::string("worker"), "task");
  REQUIRE(root.key().get<std::string>() != nullptr);
  CHECK(*root.key().get<std::string>() == "worker");
  const tree_root moved = std::move(root);
  CHECK(*moved.key().get<std::string>() == "worker");
  CHECK(root.key().is_anonymous());  // NOLINT(bugprone-use-after-move): the documented state
  CHECK(root.key().to_string() == "anonymous #0");
  CHECK(root.key() != reg.register_anonymous("other").key());
}

TEST_CASE("keys of different types never compare equal", "[registry]") {
  registry reg = manual_registry();
  const auto a = reg.register_task(1, "int");
  const auto b = reg.register_task(1L, "long");
  const auto c = reg.register_task(std::string("1"), "string");
  CHECK(reg.collect_all().size() == 3);
  CHECK(text_of(reg, 1) == "int [0ns]\n");
  CHECK(text_of(reg, 1L) == "long [0ns]\n");
  CHECK(any_key(1) != any_key(1L));
  CHECK(any_key(std::string("x")) == any_key(std::string("x")));
}

// Regression: a std::uint64_t key used to pick the private constructor of
// anonymous ids, and did not compile.
TEST_CASE("unsigned 64-bit keys are keys like any other, not anonymous ids", "[registry]") {
  registry reg = manual_registry();
  const std::uint64_t id = 7;
  const auto root = reg.register_task(id, "sized");
  REQUIRE(reg.collect<std::uint64_t>().size() == 1);
  CHECK(reg.collect<std::uint64_t>()[0].first == 7);
  CHECK(text_of(reg, id) == "sized [0ns]\n");
  CHECK(reg.collect_anonymous().empty());
  CHECK(any_key(id) != any_key::anonymous(id));
  CHECK(any_key(id).to_string() == "7");
}

TEST_CASE("any_key prints the key, and anonymous tasks are told apart", "[registry]") {
  CHECK(any_key(42).to_string() == "42");
  CHECK(any_key(std::string("actor")).to_string() == "actor");
  CHECK(fmt::format("[{}]", any_key(3)) == "[3]");
  const any_key a = any_key::anonymous(1);
  const any_key b = any_key::anonymous(2);
  CHECK(a.is_anonymous());
  CHECK_FALSE(any_key(1).is_anonymous());
  CHECK(a != b);
  CHECK(a == any_key::anonymous(1));
  CHECK(a.to_string() == "anonymous #1");
  CHECK(any_key(5).get<int>() != nullptr);
  CHECK(*any_key(5).get<int>() == 5);
  CHECK(any_key(5).get<long>() == nullptr);
  CHECK(a.get<int>() == nullptr);

  registry reg = manual_registry();
  const auto r1 = reg.register_anonymous("same name");
  const auto r2 = reg.register_anonymous("same name");
  CHECK(reg.collect_anonymous().size() == 2);
  CHECK(r1.key() != r2.key());
}

TEST_CASE("clear unlists every task; their roots end quietly", "[registry]") {
  registry reg = manual_registry();
  const auto a = reg.register_task(1, "a");
  const auto b = reg.register_anonymous("b");
  reg.clear();
  CHECK(reg.collect_all().empty());
  CHECK(a.snapshot().has_value());  // the task itself still runs
  const auto c = reg.register_task(1, "c");
  CHECK(text_of(reg, 1) == "c [0ns]\n");
}

TEST_CASE("roots may outlive their registry, and a registry its roots", "[registry][lifetime]") {
  std::optional<tree_root> root;
  {
    registry reg = manual_registry();
    root = reg.register_task(1, "outlives the registry");
    const registry copy = reg;  // copies share the same tasks
    CHECK(copy.collect_all().size() == 1);
  }
  REQUIRE(root->snapshot().has_value());
  CHECK(root->snapshot()->to_string() == "outlives the registry [0ns]\n");
  tree_root moved = std::move(*root);
  root.reset();
  CHECK(moved.snapshot().has_value());
  tree_root other = manual_registry().register_task(2, "other");
  other = std::move(moved);  // ends "other", takes over the first root
  CHECK(other.snapshot()->to_string() == "outlives the registry [0ns]\n");
}

TEST_CASE("the trees of one snapshot share their nodes and may outlive it all",
          "[registry][lifetime]") {
  const auto tree_of = [](const auto& trees, int key) {
    const auto it = std::find_if(trees.begin(), trees.end(),
                                 [&](const auto& entry) { return entry.first == key; });
    REQUIRE(it != trees.end());
    return it->second;
  };
  std::optional<await_tree::tree> kept;
  {
    registry reg = manual_registry();
    std::vector<tree_root> roots;
    for (int i = 0; i < 3; ++i) roots.push_back(reg.register_task(i, fmt::format("task {}", i)));
    auto all = reg.collect<int>();
    REQUIRE(all.size() == 3);
    CHECK(all[0].second.nodes().data() + 1 == all[1].second.nodes().data());  // one storage
    kept = tree_of(all, 1);  // a copy shares the nodes
    all.clear();
    // Later snapshots reuse the memory of dropped ones, never the nodes of
    // a tree still held.
    roots.erase(roots.begin());
    roots.push_back(reg.register_task(7, std::string(100, 'x')));
    for (int round = 0; round < 3; ++round) {
      const auto again = reg.collect<int>();
      REQUIRE(again.size() == 3);
      CHECK(tree_of(again, 1).to_string() == "task 1 [0ns]\n");
      CHECK(tree_of(again, 7).to_string() == std::string(100, 'x') + " [0ns]\n");
      CHECK(kept->to_string() == "task 1 [0ns]\n");
    }
  }
  CHECK(kept->to_string() == "task 1 [0ns]\n");  // after its registry and tasks
  CHECK(kept->active_node_count() == 1);
}

TEST_CASE("durations come from the configured clock at the snapshot instant", "[registry]") {
  registry reg = manual_registry();
  const auto root = reg.register_task(1, "timed");
  rt::manual_clock::advance(1500ms);
  CHECK(text_of(reg, 1) == "timed [1.500s]\n");
  rt::manual_clock::advance(10s);
  CHECK(text_of(reg, 1) == "timed [11.500s]\n");  // a root is long-running: never flagged
}

TEST_CASE("outside any task there is no current tree", "[registry]") {
  CHECK_FALSE(await_tree::current_tree().has_value());
}

TEST_CASE("the global registry is created once and dumped with keys", "[registry][global]") {
  await_tree::init_global_registry(await_tree::config{.clock = &rt::manual_clock::now});
  CHECK_FALSE(await_tree::init_global_registry());
  registry* global = await_tree::global_registry();
  REQUIRE(global != nullptr);
  rt::manual_clock::set(0ns);
  const auto a = global->register_task(std::string("worker b"), "b");
  const auto b = global->register_task(std::string("worker a"), "a");

  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  await_tree::dump(file);
  std::rewind(file);
  std::string written(4096, '\0');
  written.resize(std::fread(written.data(), 1, written.size(), file));
  std::fclose(file);
  CHECK(written == "[worker a]\na [0ns]\n\n[worker b]\nb [0ns]\n");
  CHECK(await_tree::dump_to_string(*global) == written);
}
