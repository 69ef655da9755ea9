// SPDX-License-Identifier: Apache-2.0
#pragma once

// Text and JSON renderings of a snapshot.
//
// Both writers are total: any span name, whatever bytes it holds, yields one
// line per node in text and valid JSON, so a dump never breaks the tool that
// reads it.

#include <await_tree/detail/utf8.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/tree.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace await_tree {
namespace detail {

/// `1.006s`, `12.345ms`, `3.210µs` or `87ns`: the value rounded to three
/// decimals in the largest unit it reaches once rounded (the Rust crate's
/// `{:.3?}`), so 999.9996 ms is `1.000s`, never `1000.000ms`.
///
/// `Out` is a std::string, or any sink with `push_back` and `+=`: the crash
/// handlers write into a fixed buffer, which fmt fills without allocating.
///
/// Digits are written without a format string: a dump of thousands of tasks
/// writes one duration per node, and parsing a format each time was a tenth
/// of the text's cost.
template <class Out>
void append_duration(Out& out, std::chrono::nanoseconds elapsed) {
  const std::int64_t ns = std::max<std::int64_t>(elapsed.count(), 0);
  const auto append_integer = [&out](std::int64_t value) {
    const fmt::format_int digits(value);
    out += std::string_view(digits.data(), digits.size());
  };
  if (ns < 1'000) {
    append_integer(ns);
    out += "ns";
    return;
  }
  // Thousandths of a microsecond, millisecond or second: ns divided by 1, 1e3
  // or 1e6, rounded half up (without overflow for any ns).
  constexpr std::array<std::string_view, 3> units{"µs", "ms", "s"};
  std::int64_t divisor = 1;
  std::size_t unit = 0;
  const auto thousandths = [&] { return ns / divisor + (ns % divisor >= (divisor + 1) / 2); };
  while (unit + 1 < units.size() && thousandths() >= 1'000'000) {
    divisor *= 1'000;
    ++unit;
  }
  const std::int64_t t = thousandths();
  append_integer(t / 1000);
  const auto decimal = [fraction = t % 1000](std::int64_t place) {
    return static_cast<char>('0' + fraction / place % 10);
  };
  const std::array<char, 4> decimals{'.', decimal(100), decimal(10), decimal(1)};
  out += std::string_view(decimals.data(), decimals.size());  // one append, not four
  out += units[unit];
}

/// Code points that some terminal or viewer treats as a line break or control.
constexpr bool is_control(char32_t cp) noexcept {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

/// The escapes both formats share: `\\`, `\n`, `\r`, `\t`; nullptr otherwise.
constexpr const char* short_escape(char32_t cp) noexcept {
  switch (cp) {
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return nullptr;
  }
}

/// Whether an ASCII byte is the same in text and in JSON: printable, neither
/// a backslash nor a quote. Names are mostly made of such bytes.
constexpr bool same_in_every_format(char c) noexcept {
  return c >= 0x20 && c < 0x7F && c != '\\' && c != '"';
}

/// Appends `text`, its runs of bytes that need no escape whole, and calls
/// `on_char(code_point, bytes)` for each other well-formed UTF-8 sequence and
/// `on_bad_byte(byte)` for each byte that starts none. Appended a character
/// at a time, names took half the time of a 50,000-node snapshot's text.
template <class Out, class OnChar, class OnBadByte>
void append_escaped(Out& out, std::string_view text, OnChar on_char, OnBadByte on_bad_byte) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto special = std::find_if_not(text.begin() + static_cast<std::ptrdiff_t>(pos),
                                          text.end(), same_in_every_format);
    const auto run_end = static_cast<std::size_t>(special - text.begin());
    if (run_end > pos) out += text.substr(pos, run_end - pos);
    pos = run_end;
    if (pos == text.size()) return;
    const utf8_step step = decode_utf8(text, pos);
    if (step.length == 0) {
      on_bad_byte(static_cast<unsigned char>(text[pos]));
      ++pos;
    } else {
      on_char(step.code_point, text.substr(pos, step.length));
      pos += step.length;
    }
  }
}

/// Keeps a name on one line: control characters and backslashes are escaped,
/// bytes that are not UTF-8 shown as `\xNN`. `Out` as for append_duration.
template <class Out>
void append_text_escaped(Out& out, std::string_view name) {
  auto it = std::back_inserter(out);
  append_escaped(
      out, name,
      [&](char32_t cp, std::string_view bytes) {
        if (const char* escape = short_escape(cp)) {
          out += escape;
        } else if (is_control(cp)) {
          fmt::format_to(it, "\\u{{{:X}}}", static_cast<std::uint32_t>(cp));
        } else {
          out += bytes;
        }
      },
      [&](unsigned char byte) { fmt::format_to(it, "\\x{:02X}", byte); });
}

/// A JSON string literal; bytes that are not UTF-8 become U+FFFD, as a Rust
/// `String` (and so the crate's serde output) could not hold them either.
inline void append_json_string(std::string& out, std::string_view text) {
  auto it = std::back_inserter(out);
  out += '"';
  append_escaped(
      out, text,
      [&](char32_t cp, std::string_view bytes) {
        if (cp == '"') {
          out += "\\\"";
        } else if (const char* escape = short_escape(cp)) {
          out += escape;
        } else if (cp < 0x20 || cp == 0x2028 || cp == 0x2029) {
          fmt::format_to(it, "\\u{:04x}", static_cast<std::uint32_t>(cp));
        } else {
          out += bytes;
        }
      },
      [&](unsigned char) { out += "\\ufffd"; });
  out += '"';
}

inline bool is_stuck(const span& s, std::chrono::nanoseconds elapsed,
                     std::chrono::nanoseconds threshold) noexcept {
  return !s.is_long_running() && elapsed >= threshold;
}

/// The longest prefix of `text` of at most `max` bytes that does not split
/// a UTF-8 sequence (a sequence is at most four bytes long).
constexpr std::string_view utf8_prefix(std::string_view text, std::size_t max) noexcept {
  if (text.size() <= max) return text;
  std::size_t end = max;
  const auto is_continuation = [&](std::size_t i) {
    return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  for (int step = 0; step < 3 && end > 0 && is_continuation(end); ++step) --end;
  return text.substr(0, end);
}

/// A name as text, cut to `max_name_bytes` with its full length noted.
template <class Out>
void append_text_name(Out& out, std::string_view name, const format_limits& limits) {
  append_text_escaped(out, utf8_prefix(name, limits.max_name_bytes));
  if (name.size() > limits.max_name_bytes) {
    fmt::format_to(std::back_inserter(out), "... ({} bytes)", name.size());
  }
}

/// Two spaces a level down to `max_indent_depth`; a deeper line says its
/// depth instead of growing, so that text stays linear in the node count.
template <class Out>
void append_indented_name(Out& out, std::uint32_t depth, std::string_view name,
                          const format_limits& limits) {
  out.append(2 * std::size_t{std::min(depth, limits.max_indent_depth)}, ' ');
  if (depth > limits.max_indent_depth) {
    fmt::format_to(std::back_inserter(out), "[depth {}] ", depth);
  }
  append_text_name(out, name, limits);
}

/// One node's line, preceded by a `[Detached N]` line when it roots a
/// detached subtree; `in_detached` carries that state from node to node of
/// one tree. `Node` is a tree::node or a live tree_state::node_view.
template <class Out, class Node>
void append_text_node(Out& out, const Node& n, bool& in_detached,
                      std::chrono::nanoseconds threshold, const format_limits& limits) {
  if (n.is_detached_root) {
    in_detached = true;
    fmt::format_to(std::back_inserter(out), "[Detached {}]\n", n.id);
  }
  const std::uint32_t depth = n.depth + (in_detached ? 1U : 0U);  // detached: one level in
  append_indented_name(out, depth, n.span.name(), limits);
  out += is_stuck(n.span, n.elapsed, threshold) ? " [!!! " : " [";
  append_duration(out, n.elapsed);
  out += ']';
  if (n.is_current) out += "  <== current";
  out += '\n';
}

/// `... N more nodes (max_nodes M)`, when max_nodes left some out.
template <class Out>
void append_omitted_nodes_line(Out& out, std::size_t total, std::size_t shown,
                               const format_limits& limits) {
  if (shown < total && shown == limits.max_nodes) {
    fmt::format_to(std::back_inserter(out), "... {} more {} (max_nodes {})\n", total - shown,
                   total - shown == 1 ? "node" : "nodes", limits.max_nodes);
  }
}

/// Calls `line(node)` for the nodes of a tree in display order, up to
/// `max_nodes`, and while `out` holds fewer than `max_bytes` bytes; returns
/// how many it wrote. The first node is always written.
template <class Nodes, class Line>
std::size_t append_bounded(std::string& out, const Nodes& nodes, const format_limits& limits,
                           std::size_t max_bytes, Line line) {
  const std::size_t last = std::min(nodes.size(), limits.max_nodes);
  std::size_t shown = 0;
  for (; shown < last && (shown == 0 || out.size() < max_bytes); ++shown) line(nodes[shown]);
  return shown;
}

/// About the length of `t` as text, so that the text is allocated once: a
/// line is its indent, its name and about 24 bytes of duration and marks.
inline std::size_t text_size_hint(const tree& t, const format_limits& limits) noexcept {
  constexpr std::size_t line_extra = 24;
  std::size_t size = 0;
  for (const tree::node& n : t.nodes()) {
    size += 2 * std::size_t{std::min(n.depth, limits.max_indent_depth)} +
            std::min(n.span.name().size(), limits.max_name_bytes) + line_extra;
  }
  return size;
}

/// `t` as text, within the limits; returns how many nodes were shown.
inline std::size_t append_tree_text(std::string& out, const tree& t, const format_limits& limits,
                                    std::size_t max_bytes) {
  bool in_detached = false;
  const std::size_t shown = append_bounded(out, t.nodes(), limits, max_bytes, [&](const auto& n) {
    append_text_node(out, n, in_detached, t.long_running_threshold(), limits);
  });
  append_omitted_nodes_line(out, t.nodes().size(), shown, limits);
  return shown;
}

/// A name as a JSON string: whole, unless `shorten_json_names` asks to cut
/// it as text does.
inline void append_json_name(std::string& out, std::string_view name, const format_limits& limits) {
  if (!limits.shorten_json_names || name.size() <= limits.max_name_bytes) {
    append_json_string(out, name);
    return;
  }
  append_json_string(
      out, fmt::format("{}... ({} bytes)", utf8_prefix(name, limits.max_name_bytes), name.size()));
}

/// `{"name", "is_verbose", "is_long_running"}`: the crate's span.
inline void append_json_span(std::string& out, const span& s, const format_limits& limits) {
  out += R"({"name":)";
  append_json_name(out, s.name(), limits);
  fmt::format_to(std::back_inserter(out), R"(,"is_verbose":{},"is_long_running":{}}})",
                 s.is_verbose(), s.is_long_running());
}

/// Writes nodes [first, last), which hold one subtree in display order, as
/// nested JSON objects; `head(out, node)` writes a node's fields up to its
/// open `"children":[`. Stops before a node once `out` holds `max_bytes`
/// (never before the first) and returns where it stopped. Iterative, so
/// that depth costs no stack.
template <class It, class Head>
It append_json_subtree(std::string& out, It first, It last, std::size_t max_bytes, Head head) {
  std::vector<std::uint32_t> open;  // depths of the objects not yet closed
  It n = first;
  for (; n != last && (n == first || out.size() < max_bytes); ++n) {
    const bool has_elder_sibling = !open.empty() && open.back() >= n->depth;
    for (; !open.empty() && open.back() >= n->depth; open.pop_back()) out += "]}";
    if (has_elder_sibling) out += ',';
    head(out, *n);
    open.push_back(n->depth);
  }
  for (; !open.empty(); open.pop_back()) out += "]}";
  return n;
}

/// `"tree":...,"detached":[...]` for nodes in display order (the main tree,
/// then each detached subtree): the shape shared by a tree and a group of
/// trees in JSON. Bounded as append_bounded; returns how many nodes it wrote.
template <class Nodes, class Head>
std::size_t append_json_forest(std::string& out, const Nodes& nodes, const format_limits& limits,
                               std::size_t max_bytes, Head head) {
  using Node = typename Nodes::value_type;
  const auto is_detached_root = [](const Node& n) { return n.is_detached_root; };
  const auto end =
      nodes.begin() + static_cast<std::ptrdiff_t>(std::min(nodes.size(), limits.max_nodes));
  const auto detached = std::find_if(nodes.begin(), end, is_detached_root);
  auto stopped = nodes.begin();
  out += R"("tree":)";
  if (end == nodes.begin()) {
    out += "null";
  } else {
    stopped = append_json_subtree(out, nodes.begin(), detached, max_bytes, head);
  }
  out += R"(,"detached":[)";
  for (auto n = detached; n == stopped && n != end && out.size() < max_bytes;) {
    const auto subtree_end = std::find_if(n + 1, end, is_detached_root);
    if (n != detached) out += ',';
    stopped = append_json_subtree(out, n, subtree_end, max_bytes, head);
    n = subtree_end;
  }
  out += ']';
  return static_cast<std::size_t>(stopped - nodes.begin());
}

/// The flat JSON form, readable at any depth by a parser with a small
/// nesting limit: `"nodes":[{"id","parent",...}],"detached_roots":[ids]`,
/// `parent` null for the root and each detached root. `id_of(node, index)`
/// gives a node's id; `fields(out, node)` writes `"span":...,"elapsed_ns":...`.
/// Bounded as append_bounded; returns how many nodes it wrote.
template <class Nodes, class IdOf, class Fields>
std::size_t append_flat_nodes(std::string& out, const Nodes& nodes, const format_limits& limits,
                              std::size_t max_bytes, IdOf id_of, Fields fields) {
  auto it = std::back_inserter(out);
  std::vector<std::uint32_t> ancestors;  // ids, by depth, above the node being written
  std::vector<std::uint32_t> detached_roots;
  out += R"("nodes":[)";
  std::size_t index = 0;
  const std::size_t shown = append_bounded(out, nodes, limits, max_bytes, [&](const auto& n) {
    const std::uint32_t id = id_of(n, index);
    ancestors.resize(n.depth);
    if (index++ > 0) out += ',';
    if (n.depth == 0) {
      fmt::format_to(it, R"({{"id":{},"parent":null,)", id);
    } else {
      fmt::format_to(it, R"({{"id":{},"parent":{},)", id, ancestors.back());
    }
    fields(out, n);
    fmt::format_to(it, R"(,"current":{}}})", n.is_current);
    ancestors.push_back(id);
    if (n.is_detached_root) detached_roots.push_back(id);
  });
  fmt::format_to(it, R"(],"detached_roots":[{}],"omitted_nodes":{})",
                 fmt::join(detached_roots, ","), nodes.size() - shown);
  return shown;
}

/// `t` in the nested (crate's) JSON form, within the limits; an
/// `"omitted_nodes"` field is added only when some were left out.
inline std::size_t append_tree_json(std::string& out, const tree& t, const format_limits& limits,
                                    std::size_t max_bytes) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, R"({{"current":{},)", t.current_id());
  const std::size_t shown = append_json_forest(
      out, t.nodes(), limits, max_bytes, [&](std::string& o, const tree::node& n) {
        fmt::format_to(std::back_inserter(o), R"({{"id":{},"span":)", n.id);
        append_json_span(o, n.span, limits);
        fmt::format_to(std::back_inserter(o), R"(,"elapsed_ns":{},"children":[)",
                       n.elapsed.count());
      });
  out += R"(,"current_ids":[)";
  bool first = true;
  for (const tree::node& n : t.nodes()) {
    if (!n.is_current) continue;
    fmt::format_to(it, "{}{}", first ? "" : ",", n.id);
    first = false;
  }
  out += ']';
  if (shown < t.nodes().size()) {
    fmt::format_to(it, R"(,"omitted_nodes":{})", t.nodes().size() - shown);
  }
  out += '}';
  return shown;
}

/// `t` in the flat JSON form: `{"current", "nodes", "detached_roots",
/// "omitted_nodes"}`.
inline std::size_t append_tree_flat_json(std::string& out, const tree& t,
                                         const format_limits& limits, std::size_t max_bytes) {
  fmt::format_to(std::back_inserter(out), R"({{"current":{},)", t.current_id());
  const std::size_t shown = append_flat_nodes(
      out, t.nodes(), limits, max_bytes, [](const tree::node& n, std::size_t) { return n.id; },
      [&](std::string& o, const tree::node& n) {
        o += R"("span":)";
        append_json_span(o, n.span, limits);
        fmt::format_to(std::back_inserter(o), R"(,"elapsed_ns":{})", n.elapsed.count());
      });
  out += '}';
  return shown;
}

}  // namespace detail

inline std::string tree::to_string(const format_limits& limits) const {
  std::string out;
  out.reserve(detail::text_size_hint(*this, limits));
  detail::append_tree_text(out, *this, limits, unlimited);
  return out;
}

inline std::string tree::to_json(const format_limits& limits) const {
  std::string out;
  detail::append_tree_json(out, *this, limits, unlimited);
  return out;
}

inline std::string tree::to_flat_json(const format_limits& limits) const {
  std::string out;
  detail::append_tree_flat_json(out, *this, limits, unlimited);
  return out;
}

inline std::ostream& operator<<(std::ostream& os, const tree& t) { return os << t.to_string(); }

}  // namespace await_tree

template <>
struct fmt::formatter<await_tree::tree> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const await_tree::tree& t, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(t.to_string(), ctx);
  }
};
