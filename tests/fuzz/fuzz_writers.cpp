// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the text and JSON writers. The input becomes a tree of
// pending instrumented awaits with arbitrary span names (any bytes: NUL,
// newlines, invalid UTF-8), built through the library: a registered task
// whose nodes start their children inline and stay pending, some completing
// at once so that their children are left detached. Its snapshot must list
// every pending node; the text must keep one line per node and be valid
// UTF-8; the JSON must parse and give back every name (valid UTF-8 as is,
// each bad byte as U+FFFD), flag and id, in order. Aborts on a violation.

#include <await_tree/await_tree.hpp>

#include "runtime/task.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fuzzer/FuzzedDataProvider.h>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t max_nodes = 64;
constexpr std::size_t max_name_length = 48;

void require(bool holds, std::string_view what, const std::string& evidence) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_writers: %.*s\n%s\n", static_cast<int>(what.size()), what.data(),
               evidence.c_str());
  std::abort();
}

// ---------------------------------------------------------------------------
// The tree to build
// ---------------------------------------------------------------------------

/// Node 0 is the task's root and node 1 its only child (the task's body is
/// node 1's coroutine); every later node hangs under an earlier one.
struct planned_node {
  std::size_t parent = 0;
  std::string name;
  bool verbose = false;
  bool long_running = false;
  bool detaches = false;  // its await completes at once: its children are left detached
};

std::vector<planned_node> read_plan(FuzzedDataProvider& input) {
  std::vector<planned_node> plan;
  plan.push_back({.name = input.ConsumeRandomLengthString(max_name_length)});
  while (plan.size() < 2 || (plan.size() < max_nodes && input.remaining_bytes() > 0)) {
    const std::size_t index = plan.size();
    planned_node node;
    node.parent = index == 1 ? 0 : input.ConsumeIntegralInRange<std::size_t>(1, index - 1);
    const auto flags = input.ConsumeIntegral<std::uint8_t>();
    node.verbose = (flags & 1) != 0;
    node.long_running = (flags & 2) != 0;
    node.detaches = index > 1 && (flags & 4) != 0;
    node.name = input.ConsumeRandomLengthString(max_name_length);
    plan.push_back(std::move(node));
  }
  return plan;
}

await_tree::span span_of(const planned_node& node) {
  await_tree::span s{std::string_view(node.name)};
  if (node.verbose) s = std::move(s).verbose();
  if (node.long_running) s = std::move(s).long_running();
  return s;
}

/// The coroutines of nodes 1 and up, each awaiting its node.
class forest {
 public:
  explicit forest(const std::vector<planned_node>& plan) : plan_(plan) {
    for (std::size_t i = 1; i < plan.size(); ++i) tasks_.push_back(grow(*this, i));
  }

  [[nodiscard]] rt::task<>& task(std::size_t index) { return tasks_[index - 1]; }

 private:
  /// Starts a node's children inline, inside its await, so that they attach
  /// under it; suspends for good unless the node detaches.
  struct start_children {
    forest& f;
    std::size_t index;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>) {
      for (std::size_t i = index + 1; i < f.plan_.size(); ++i) {
        if (f.plan_[i].parent == index) f.task(i).start();
      }
      return !f.plan_[index].detaches;
    }
    void await_resume() const noexcept {}
  };

  static rt::task<> grow(forest& f, std::size_t index) {
    co_await await_tree::instrument(start_children{f, index}, span_of(f.plan_[index]));
  }

  const std::vector<planned_node>& plan_;
  std::vector<rt::task<>> tasks_;
};

rt::task<> run(await_tree::rooted<rt::task<>&> task) { co_await std::move(task); }

// ---------------------------------------------------------------------------
// What the writers must produce
// ---------------------------------------------------------------------------

/// The length of the well-formed UTF-8 sequence at `pos`, or 0 (Unicode
/// table 3-7: each lead byte range allows one range for the byte after it).
std::size_t well_formed_length(std::string_view s, std::size_t pos) {
  struct lead_range {
    unsigned char first, last;
    std::size_t length;
    unsigned char second_min, second_max;
  };
  static constexpr std::array<lead_range, 9> table = {{
      {0x00, 0x7F, 1, 0, 0},
      {0xC2, 0xDF, 2, 0x80, 0xBF},
      {0xE0, 0xE0, 3, 0xA0, 0xBF},
      {0xE1, 0xEC, 3, 0x80, 0xBF},
      {0xED, 0xED, 3, 0x80, 0x9F},
      {0xEE, 0xEF, 3, 0x80, 0xBF},
      {0xF0, 0xF0, 4, 0x90, 0xBF},
      {0xF1, 0xF3, 4, 0x80, 0xBF},
      {0xF4, 0xF4, 4, 0x80, 0x8F},
  }};
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  for (const lead_range& r : table) {
    if (at(0) < r.first || at(0) > r.last) continue;
    if (s.size() - pos < r.length) return 0;
    if (r.length > 1 && (at(1) < r.second_min || at(1) > r.second_max)) return 0;
    for (std::size_t i = 2; i < r.length; ++i) {
      if (at(i) < 0x80 || at(i) > 0xBF) return 0;
    }
    return r.length;
  }
  return 0;
}

bool is_utf8(std::string_view s) {
  for (std::size_t pos = 0; pos < s.size();) {
    const std::size_t length = well_formed_length(s, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

/// Whether UTF-8 `text` holds a control character (C0 other than its line
/// ends, DEL, C1) or a Unicode line or paragraph separator.
bool holds_control(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0U;
    const std::string_view rest = text.substr(i, 3);
    if ((byte < 0x20 && byte != '\n') || byte == 0x7F) return true;
    if (byte == 0xC2 && next >= 0x80 && next <= 0x9F) return true;
    if (rest == "\u2028" || rest == "\u2029") return true;
  }
  return false;
}

/// A name as JSON must give it back: each byte that starts no well-formed
/// sequence replaced by U+FFFD.
std::string json_name(std::string_view name) {
  std::string out;
  for (std::size_t pos = 0; pos < name.size();) {
    const std::size_t length = well_formed_length(name, pos);
    out += length == 0 ? std::string_view("\xEF\xBF\xBD") : name.substr(pos, length);
    pos += std::max<std::size_t>(length, 1);
  }
  return out;
}

/// The pending nodes' names, sorted: the root, and every node whose await
/// did not complete at once.
std::vector<std::string> expected_names(const std::vector<planned_node>& plan) {
  std::vector<std::string> names;
  for (const planned_node& node : plan) {
    if (!node.detaches) names.push_back(node.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void check_nodes(const await_tree::tree& t, const std::vector<planned_node>& plan) {
  std::vector<std::string> names;
  for (const auto& node : t.nodes()) names.emplace_back(node.span.name());
  std::sort(names.begin(), names.end());
  require(names == expected_names(plan), "the snapshot lost or invented nodes", t.to_string());
}

void check_text(const await_tree::tree& t) {
  const std::string text = t.to_string();
  const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  // A `[Detached N]` line heads each detached subtree.
  require(lines == t.active_node_count() + t.detached_node_count() && text.ends_with('\n'),
          "text is not one line per node", text);
  require(is_utf8(text), "text is not UTF-8", text);
  require(!holds_control(text), "text holds a control character or line separator", text);
  require(fmt::format("{}", t) == text, "fmt differs from to_string()", text);
  std::ostringstream stream;
  stream << t;
  require(stream.str() == text, "operator<< differs from to_string()", text);
}

/// Appends the JSON nodes of one subtree in display order (depth first).
void flatten(const nlohmann::json& node, std::vector<const nlohmann::json*>& out) {
  out.push_back(&node);
  for (const auto& child : node.at("children")) flatten(child, out);
}

void check_json(const await_tree::tree& t) {
  const std::string text = t.to_json();
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(!json.is_discarded(), "JSON does not parse", text);
  std::vector<const nlohmann::json*> nodes;
  flatten(json.at("tree"), nodes);
  for (const auto& detached : json.at("detached")) flatten(detached, nodes);
  require(nodes.size() == t.nodes().size(), "JSON has another count of nodes", text);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& expected = t.nodes()[i];
    const auto& span = nodes[i]->at("span");
    require(span.at("name").get<std::string>() == json_name(expected.span.name()),
            "a name did not round-trip through JSON", text);
    require(span.at("is_verbose").get<bool>() == expected.span.is_verbose() &&
                span.at("is_long_running").get<bool>() == expected.span.is_long_running() &&
                nodes[i]->at("id").get<std::uint32_t>() == expected.id,
            "a node's fields did not round-trip through JSON", text);
  }
}

void check_dumps(const await_tree::registry& reg) {
  for (const bool grouped : {false, true}) {
    const std::string dump = await_tree::dump_to_string(
        {.source = reg, .format = await_tree::dump_format::json, .grouped = grouped});
    require(nlohmann::json::accept(dump), "a JSON dump does not parse", dump);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const std::vector<planned_node> plan = read_plan(input);
  await_tree::registry reg(await_tree::config{.verbose = true});
  forest nodes(plan);
  rt::task<> task = run(reg.register_task(0, span_of(plan[0])).instrument(nodes.task(1)));
  task.start();

  const auto t = reg.get(0);
  require(t.has_value(), "the task is not registered", "");
  check_nodes(*t, plan);
  check_text(*t);
  check_json(*t);
  check_dumps(reg);
  return 0;
}
