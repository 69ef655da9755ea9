// SPDX-License-Identifier: Apache-2.0
// The text and JSON renderings, on snapshots built by hand.

#include <await_tree/await_tree.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using await_tree::span;
using await_tree::tree;
using std::chrono::nanoseconds;

std::string duration(nanoseconds d) {
  std::string out;
  await_tree::detail::append_duration(out, d);
  return out;
}

tree::node make_node(std::uint32_t id, span s, nanoseconds elapsed, std::uint32_t depth,
                     bool current = false, bool detached_root = false) {
  return {id, std::move(s), elapsed, depth, current, detached_root};
}

// The reference snapshot.
tree reference_tree() {
  return tree({make_node(1, span("actor 42").long_running(), 1006ms, 0),
               make_node(2, "join", 1006ms, 1), make_node(3, "bar", 1006ms, 2),
               make_node(4, "baz in bar", 1006ms, 3, true), make_node(5, "sleep 2000ms", 1005ms, 1),
               make_node(7, "fetch block 1234", 12200ms, 0, false, true)},
              4, 10s);
}

}  // namespace

TEST_CASE("durations print like the Rust crate's {:.3?}", "[format]") {
  CHECK(duration(0ns) == "0ns");
  CHECK(duration(87ns) == "87ns");
  CHECK(duration(999ns) == "999ns");
  CHECK(duration(1000ns) == "1.000µs");
  CHECK(duration(3210ns) == "3.210µs");
  CHECK(duration(999999ns) == "999.999µs");
  CHECK(duration(1999999999ns) == "2.000s");
  CHECK(duration(12345678ns) == "12.346ms");
  CHECK(duration(1006ms) == "1.006s");
  CHECK(duration(12200ms) == "12.200s");
  CHECK(duration(3600s) == "3600.000s");
  CHECK(duration(-5ns) == "0ns");  // a clock that went backwards
}

TEST_CASE("a duration that rounds to 1000 of a unit is shown in the next one", "[format]") {
  CHECK(duration(999'999ns) == "999.999µs");  // nanoseconds are whole: µs never round up
  CHECK(duration(1'000'000ns) == "1.000ms");
  CHECK(duration(999'999'499ns) == "999.999ms");
  CHECK(duration(999'999'500ns) == "1.000s");  // 999.9995 ms
  CHECK(duration(999'999'999ns) == "1.000s");
  CHECK(duration(1'000'000'000ns) == "1.000s");
  CHECK(duration(999'499ns) == "999.499µs");
  CHECK(duration(1'999'500ns) == "2.000ms");       // 1.9995 ms rounds half up
  CHECK(duration(59'999'500'000ns) == "60.000s");  // no minutes: seconds go on
  // Huge values neither overflow nor change unit.
  CHECK(duration(nanoseconds::max()) == "9223372036.855s");
}

TEST_CASE("rounded durations are the same in text, grouped dumps and the watchdog", "[format]") {
  const tree t({make_node(1, "root", 999'999'700ns, 0), make_node(2, "leaf", 999'999'600ns, 1)}, 1,
               10s);
  CHECK(t.to_string() == "root [1.000s]\n  leaf [1.000s]\n");

  const auto groups = await_tree::group_trees({{await_tree::any_key(1), t}});
  std::string grouped;
  await_tree::detail::append_group_text(grouped, groups.at(0), 5, {}, await_tree::unlimited);
  CHECK(grouped == "[1 task: 1]\nroot [1.000s]\n  leaf [1.000s]\n");

  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  await_tree::print_stall({await_tree::any_key(1), t, t.nodes()[1]}, file);
  std::rewind(file);
  std::array<char, 256> report{};
  CHECK(std::fread(report.data(), 1, report.size() - 1, file) > 0);
  std::fclose(file);
  CHECK_THAT(report.data(), Catch::StartsWith("await-tree watchdog: task [1] has been waiting "
                                              "1.000s at \"leaf\"\nroot [1.000s]\n"));
}

TEST_CASE("text format matches the reference layout", "[format]") {
  CHECK(reference_tree().to_string() ==
        "actor 42 [1.006s]\n"
        "  join [1.006s]\n"
        "    bar [1.006s]\n"
        "      baz in bar [1.006s]  <== current\n"
        "  sleep 2000ms [1.005s]\n"
        "[Detached 7]\n"
        "  fetch block 1234 [!!! 12.200s]\n");
}

TEST_CASE("the stuck flag honours the threshold and long-running spans", "[format]") {
  const tree t(
      {make_node(1, span("root").long_running(), 60s, 0), make_node(2, "young", 9999ms, 1),
       make_node(3, "old", 10s, 1), make_node(4, span("server loop").long_running(), 60s, 1)},
      1, 10s);
  CHECK(t.to_string() ==
        "root [60.000s]\n"
        "  young [9.999s]\n"
        "  old [!!! 10.000s]\n"
        "  server loop [60.000s]\n");
  const tree strict({make_node(1, span("root").long_running(), 1s, 0), make_node(2, "a", 2ms, 1)},
                    1, 1ms);
  CHECK(strict.to_string() == "root [1.000s]\n  a [!!! 2.000ms]\n");
}

TEST_CASE("operator<< and fmt print the same text", "[format]") {
  const tree t = reference_tree();
  std::ostringstream os;
  os << t;
  CHECK(os.str() == t.to_string());
  CHECK(fmt::format("{}", t) == t.to_string());
}

TEST_CASE("names are escaped so that every node keeps one line", "[format]") {
  const std::string nasty = std::string("a\nb\r\tc\\d\x01") + "\x7f" + "\xff" + "\xc3\xa9" +
                            "\xe2\x80\xa8" + "\xc2\x85" + std::string(1, '\0') + "z";
  const tree t(
      {make_node(1, span("root").long_running(), 0ns, 0), make_node(2, span(nasty), 0ns, 1)}, 1,
      10s);
  const std::string text = t.to_string();
  CHECK(text ==
        "root [0ns]\n  a\\nb\\r\\tc\\\\d\\u{1}\\u{7F}\\xFF\xc3\xa9\\u{2028}\\u{85}\\u{0}z [0ns]\n");
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
}

TEST_CASE("JSON follows the Rust crate's shape", "[format][json]") {
  const auto j = nlohmann::json::parse(reference_tree().to_json());
  CHECK(j["current"] == 4);
  CHECK(j["current_ids"] == nlohmann::json::array({4}));
  const auto& root = j["tree"];
  CHECK(root["id"] == 1);
  CHECK(root["span"]["name"] == "actor 42");
  CHECK(root["span"]["is_verbose"] == false);
  CHECK(root["span"]["is_long_running"] == true);
  CHECK(root["elapsed_ns"] == 1006000000);
  REQUIRE(root["children"].size() == 2);
  CHECK(root["children"][0]["span"]["name"] == "join");
  CHECK(root["children"][0]["children"][0]["children"][0]["span"]["name"] == "baz in bar");
  CHECK(root["children"][0]["children"][0]["children"][0]["children"].empty());
  CHECK(root["children"][1]["span"]["name"] == "sleep 2000ms");
  REQUIRE(j["detached"].size() == 1);
  CHECK(j["detached"][0]["id"] == 7);
  CHECK(j["detached"][0]["span"]["name"] == "fetch block 1234");
}

TEST_CASE("JSON nests siblings and several detached subtrees correctly", "[format][json]") {
  const tree t({make_node(1, span("r").long_running(), 0ns, 0), make_node(2, "a", 0ns, 1),
                make_node(3, "a1", 0ns, 2), make_node(4, "a2", 0ns, 2), make_node(5, "b", 0ns, 1),
                make_node(8, "d1", 0ns, 0, false, true), make_node(9, "d1x", 0ns, 1),
                make_node(10, "d2", 0ns, 0, false, true)},
               1, 10s);
  const auto j = nlohmann::json::parse(t.to_json());
  CHECK(j["current"] == 1);
  CHECK(j["current_ids"].empty());
  CHECK(j["tree"]["children"].size() == 2);
  CHECK(j["tree"]["children"][0]["children"].size() == 2);
  CHECK(j["tree"]["children"][0]["children"][1]["span"]["name"] == "a2");
  CHECK(j["tree"]["children"][1]["span"]["name"] == "b");
  REQUIRE(j["detached"].size() == 2);
  CHECK(j["detached"][0]["children"][0]["span"]["name"] == "d1x");
  CHECK(j["detached"][1]["span"]["name"] == "d2");
  CHECK(t.detached_node_count() == 2);
  CHECK(t.active_node_count() == 8);
}

TEST_CASE("JSON stays valid whatever bytes a name holds", "[format][json]") {
  std::vector<std::string> names = {
      "quote \" and backslash \\", "control \x01\x02\x1f",   "newline\nreturn\r",
      "invalid \xff\xfe utf-8",    "truncated \xe2\x82",     "overlong \xc0\xaf",
      "surrogate \xed\xa0\x80",    "emoji \xf0\x9f\x98\x80", std::string("nul \0 inside", 12)};
  for (unsigned b = 0; b < 256; ++b) names.push_back(std::string(1, static_cast<char>(b)));
  for (const std::string& name : names) {
    const tree t({make_node(1, span(name).long_running(), 0ns, 0)}, 1, 10s);
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(t.to_json()));
    const std::string parsed = j["tree"]["span"]["name"];
    CHECK(!parsed.empty());  // replaced, never dropped
    if (std::all_of(name.begin(), name.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
      CHECK(parsed == name);
    }
  }
}

TEST_CASE("JSON keeps valid UTF-8 and replaces invalid bytes with U+FFFD", "[format][json]") {
  const auto name_after_round_trip = [](const std::string& name) {
    const tree t({make_node(1, span(name).long_running(), 0ns, 0)}, 1, 10s);
    return nlohmann::json::parse(t.to_json())["tree"]["span"]["name"].get<std::string>();
  };
  CHECK(name_after_round_trip("emoji \xf0\x9f\x98\x80 caf\xc3\xa9") ==
        "emoji \xf0\x9f\x98\x80 caf\xc3\xa9");
  CHECK(name_after_round_trip("bad \xff\xfe end") == "bad \xef\xbf\xbd\xef\xbf\xbd end");
  CHECK(name_after_round_trip("cut \xe2\x82") == "cut \xef\xbf\xbd\xef\xbf\xbd");
  CHECK(name_after_round_trip("say \"hi\" \\ \"bye\"\n") == "say \"hi\" \\ \"bye\"\n");
}

TEST_CASE("text shows quotes as they are and escapes between runs of plain text", "[format]") {
  const tree t({make_node(1, span("say \"hi\"\\\\\tthen \"bye\"").long_running(), 0ns, 0)}, 1, 10s);
  CHECK(t.to_string() == "say \"hi\"\\\\\\\\\\tthen \"bye\" [0ns]\n");
}

TEST_CASE("an empty snapshot renders as empty text and a null tree", "[format]") {
  const tree t;
  CHECK(t.to_string().empty());
  const auto j = nlohmann::json::parse(t.to_json());
  CHECK(j["tree"].is_null());
  CHECK(j["detached"].empty());
}
