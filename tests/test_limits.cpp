// SPDX-License-Identifier: Apache-2.0
// The bounds on dumps (format_limits, dump_options::max_bytes) and the flat
// JSON form, on snapshots built by hand and on small live trees. The big
// shapes are in test_shapes.cpp.

#include <await_tree/await_tree.hpp>
#include <await_tree/detail/dying_dump.hpp>

#include "json_nesting.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using await_tree::dump_format;
using await_tree::format_limits;
using await_tree::span;
using await_tree::tree;

namespace {

/// A chain: the root "top" at depth 0, then "level" down to `deepest`.
tree chain(std::uint32_t deepest) {
  std::vector<tree::node> nodes;
  nodes.push_back({1, span("top").long_running(), 1s, 0, false, false});
  for (std::uint32_t d = 1; d <= deepest; ++d)
    nodes.push_back({d + 1, "level", 1s, d, false, false});
  return tree(std::move(nodes), 1, 10s);
}

/// A root with `count` children "child i".
tree fan(std::uint32_t count) {
  std::vector<tree::node> nodes;
  nodes.push_back({1, span("top").long_running(), 1s, 0, false, false});
  for (std::uint32_t i = 0; i < count; ++i) {
    nodes.push_back({i + 2, fmt::format("child {}", i), 1s, 1, false, false});
  }
  return tree(std::move(nodes), 1, 10s);
}

rt::task<> nest(int levels, rt::event& done) {
  if (levels == 0) {
    co_await await_tree::instrument(done.wait(), "leaf");
  } else {
    co_await await_tree::instrument(nest(levels - 1, done), "level");
  }
}

/// Registers `count` idle tasks 0, 1, ... in `reg`.
std::vector<await_tree::tree_root> idle_roots(await_tree::registry& reg, int count) {
  std::vector<await_tree::tree_root> roots;
  for (int i = 0; i < count; ++i) roots.push_back(reg.register_task(i, "idle task"));
  return roots;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

}  // namespace

TEST_CASE("past max_indent_depth, lines keep their indentation and say their depth", "[limits]") {
  const auto lines = lines_of(chain(70).to_string());
  REQUIRE(lines.size() == 71);
  CHECK(lines[63] == std::string(126, ' ') + "level [1.000s]");
  CHECK(lines[64] == std::string(128, ' ') + "level [1.000s]");
  CHECK(lines[65] == std::string(128, ' ') + "[depth 65] level [1.000s]");
  CHECK(lines[70] == std::string(128, ' ') + "[depth 70] level [1.000s]");

  const auto shallow = lines_of(chain(4).to_string({.max_indent_depth = 2}));
  CHECK(shallow == std::vector<std::string>{"top [1.000s]", "  level [1.000s]",
                                            "    level [1.000s]", "    [depth 3] level [1.000s]",
                                            "    [depth 4] level [1.000s]"});
}

TEST_CASE("text grows linearly with depth", "[limits]") {
  const std::size_t at_1000 = chain(1000).to_string().size();
  const std::size_t at_2000 = chain(2000).to_string().size();
  // Levels 1,001 to 2,000: each line is the indent limit, "[depth NNNN] "
  // and the label, whatever its depth.
  CHECK(at_2000 - at_1000 == 1000 * (128 + 13 + std::string_view("level [1.000s]\n").size()));
}

TEST_CASE("a detached subtree deep down is indented one level in, within the limit", "[limits]") {
  tree t({{1, span("top").long_running(), 1s, 0, false, false},
          {9, "lost", 1s, 0, false, true},
          {10, "below", 1s, 1, false, false}},
         1, 10s);
  CHECK(t.to_string({.max_indent_depth = 1}) ==
        "top [1.000s]\n[Detached 9]\n  lost [1.000s]\n  [depth 2] below [1.000s]\n");
}

TEST_CASE("a long name is cut in text, on a UTF-8 boundary, and kept whole in JSON", "[limits]") {
  // 1023 ASCII bytes, then "é" (two bytes) across the 1,024-byte limit.
  const std::string name = std::string(1023, 'a') + "\xC3\xA9" + std::string(100, 'b');
  tree t({{1, span("top").long_running(), 1s, 0, false, false}, {2, name, 2s, 1, true, false}}, 2,
         10s);
  const auto lines = lines_of(t.to_string());
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "  " + std::string(1023, 'a') + "... (1125 bytes) [2.000s]  <== current");
  CHECK(lines_of(t.to_string({.max_name_bytes = 1025}))[1] ==
        "  " + std::string(1023, 'a') + "\xC3\xA9... (1125 bytes) [2.000s]  <== current");

  const auto whole = nlohmann::json::parse(t.to_json());
  CHECK(whole["tree"]["children"][0]["span"]["name"] == name);
  const auto cut = nlohmann::json::parse(t.to_flat_json({.shorten_json_names = true}));
  CHECK(cut["nodes"][1]["span"]["name"] == std::string(1023, 'a') + "... (1125 bytes)");
  const auto short_name = nlohmann::json::parse(t.to_json({.shorten_json_names = true}));
  CHECK(short_name["tree"]["span"]["name"] == "top");  // short names are left alone
}

TEST_CASE("max_nodes cuts each tree and counts the rest, in every form", "[limits]") {
  const tree t = fan(5);
  const format_limits limits{.max_nodes = 3};
  CHECK(t.to_string(limits) ==
        "top [1.000s]\n  child 0 [1.000s]\n  child 1 [1.000s]\n... 3 more nodes (max_nodes 3)\n");

  const auto nested = nlohmann::json::parse(t.to_json(limits));
  CHECK(nested["tree"]["children"].size() == 2);
  CHECK(nested["omitted_nodes"] == 3);
  CHECK_FALSE(nlohmann::json::parse(t.to_json()).contains("omitted_nodes"));  // the crate's shape

  const auto flat = nlohmann::json::parse(t.to_flat_json(limits));
  CHECK(flat["nodes"].size() == 3);
  CHECK(flat["omitted_nodes"] == 3);

  const auto none = nlohmann::json::parse(t.to_json({.max_nodes = 0}));
  CHECK(none["tree"].is_null());
  CHECK(none["omitted_nodes"] == 6);
  CHECK(t.to_string({.max_nodes = 0}) == "... 6 more nodes (max_nodes 0)\n");
}

TEST_CASE("the flat JSON form lists nodes with their parents", "[limits][json]") {
  tree t({{1, span("actor 42").long_running(), 1006ms, 0, false, false},
          {2, "join", 1006ms, 1, false, false},
          {3, "bar", 1006ms, 2, true, false},
          {5, "sleep", 1005ms, 1, false, false},
          {7, "fetch", 12200ms, 0, false, true},
          {8, "read", 12100ms, 1, false, false}},
         3, 10s);
  CHECK(
      t.to_flat_json() ==
      R"({"current":3,"nodes":[)"
      R"({"id":1,"parent":null,"span":{"name":"actor 42","is_verbose":false,"is_long_running":true},"elapsed_ns":1006000000,"current":false},)"
      R"({"id":2,"parent":1,"span":{"name":"join","is_verbose":false,"is_long_running":false},"elapsed_ns":1006000000,"current":false},)"
      R"({"id":3,"parent":2,"span":{"name":"bar","is_verbose":false,"is_long_running":false},"elapsed_ns":1006000000,"current":true},)"
      R"({"id":5,"parent":1,"span":{"name":"sleep","is_verbose":false,"is_long_running":false},"elapsed_ns":1005000000,"current":false},)"
      R"({"id":7,"parent":null,"span":{"name":"fetch","is_verbose":false,"is_long_running":false},"elapsed_ns":12200000000,"current":false},)"
      R"({"id":8,"parent":7,"span":{"name":"read","is_verbose":false,"is_long_running":false},"elapsed_ns":12100000000,"current":false}],)"
      R"("detached_roots":[7],"omitted_nodes":0})");
}

TEST_CASE("the flat form nests at most 8 deep at any depth; the nested form 2 a level",
          "[limits][json]") {
  CHECK(test::nesting_depth(chain(5000).to_flat_json()) == 4);
  // Each level adds an object and a children array; the deepest span object
  // is 3 deep in a tree with only a root. serde_json fails at 128: a chain
  // whose deepest node is at depth 63 (64 nodes) cannot be read by it.
  CHECK(test::nesting_depth(chain(0).to_json()) == 3);
  CHECK(test::nesting_depth(chain(62).to_json()) == 127);
  CHECK(test::nesting_depth(chain(63).to_json()) == 129);

  test::single_task t;
  rt::event done;
  t.spawn(nest(300, done));
  t.ex.run();
  const std::string flat_dump =
      await_tree::dump_to_string({.source = t.reg, .format = dump_format::flat_json});
  CHECK(test::nesting_depth(flat_dump) <= 8);
  CHECK(nlohmann::json::parse(flat_dump)["tasks"][0]["tree"]["nodes"].size() == 302);
  const std::string grouped = await_tree::dump_to_string(
      {.source = t.reg, .format = dump_format::flat_json, .grouped = true});
  CHECK(test::nesting_depth(grouped) <= 8);
  CHECK(nlohmann::json::parse(grouped)["groups"][0]["nodes"].size() == 302);
  done.set();
  CHECK(t.finishes());
}

TEST_CASE("max_bytes cuts a dump and counts what it left out", "[limits][dump]") {
  await_tree::registry reg = test::manual_registry();
  const auto roots = idle_roots(reg, 100);
  const std::string whole = await_tree::dump_to_string({.source = reg});
  // A blank line between trees, none after the last; 90 two-digit keys.
  REQUIRE(whole.size() == 100 * std::string_view("[0]\nidle task [0ns]\n\n").size() - 1 + 90);

  const std::string text = await_tree::dump_to_string({.source = reg, .max_bytes = 200});
  const auto lines = lines_of(text);
  // Whole tasks of 23 or 24 bytes until the 200th byte is passed.
  CHECK(text.size() <= 200 + 24 + 60);
  CHECK(text.substr(0, text.size() - lines.back().size() - 1) ==
        whole.substr(0, text.size() - lines.back().size() - 1));
  CHECK(lines.back() == "... cut at max_bytes 200: 90 more tasks not shown");

  for (const dump_format format : {dump_format::json, dump_format::flat_json}) {
    const auto json = nlohmann::json::parse(
        await_tree::dump_to_string({.source = reg, .format = format, .max_bytes = 500}));
    CHECK(json["tasks"].size() > 0);
    CHECK(json["tasks"].size() + json["omitted_tasks"].get<std::size_t>() == 100);
    CHECK(json["omitted_tasks"] > 0);
  }
  const std::string grouped =
      await_tree::dump_to_string({.source = reg, .grouped = true, .max_bytes = 10});
  CHECK(grouped == "[100 tasks: 0, 1, 2, 3, 4, ...]\nidle task [0ns]\n");  // one group fits
}

TEST_CASE("max_bytes cuts inside a tree, counting its nodes left", "[limits][dump]") {
  test::single_task t;
  rt::event done;
  t.spawn(nest(50, done));
  t.ex.run();
  const std::string text = await_tree::dump_to_string({.source = t.reg, .max_bytes = 300});
  const auto lines = lines_of(text);
  REQUIRE(lines.size() > 3);
  CHECK(text.size() < 300 + 200);
  CHECK(lines.back() ==
        fmt::format("... cut at max_bytes 300: {} more nodes and 0 more tasks not shown",
                    52 - (lines.size() - 3)));  // [0], the nodes, a blank line

  const auto nested = nlohmann::json::parse(
      await_tree::dump_to_string({.source = t.reg, .format = dump_format::json, .max_bytes = 300}));
  CHECK(nested["tasks"][0]["tree"]["omitted_nodes"] > 0);
  CHECK(nested["omitted_tasks"] == 0);
  const auto grouped = nlohmann::json::parse(await_tree::dump_to_string(
      {.source = t.reg, .format = dump_format::json, .grouped = true, .max_bytes = 300}));
  CHECK(grouped["groups"][0]["omitted_nodes"] > 0);
  done.set();
  CHECK(t.finishes());
}

TEST_CASE("the dying dump stops a tree at max_nodes or max_bytes", "[limits][crash]") {
  test::single_task t;
  rt::event done;
  t.spawn(nest(10, done));
  t.ex.run();
  const auto dying_text = [&](const format_limits& limits, std::size_t max_bytes) {
    std::FILE* file = std::tmpfile();
    {
      std::array<char, 64> buffer;  // small: several flushes
      await_tree::detail::fd_writer out(fileno(file), buffer.data(), buffer.size());
      await_tree::detail::registry_access::state(t.reg).try_visit_all(
          [&](const await_tree::any_key&, await_tree::detail::tree_state& s) {
            await_tree::detail::write_tree(out, s, limits, max_bytes);
          },
          [] {});
    }
    std::rewind(file);
    std::string text(4096, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), file));
    std::fclose(file);
    return text;
  };
  CHECK(dying_text({.max_nodes = 3}, await_tree::unlimited) ==
        "root [0ns]\n  level [0ns]\n    level [0ns]\n... more nodes not shown (max_nodes 3)\n");
  CHECK(dying_text({.max_indent_depth = 1}, 30) ==
        "root [0ns]\n  level [0ns]\n  [depth 2] level [0ns]\n"
        "... more nodes not shown (max_bytes 30)\n");
  CHECK(dying_text({}, await_tree::unlimited) == t.text());
  done.set();
  CHECK(t.finishes());
}
