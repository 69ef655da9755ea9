// SPDX-License-Identifier: Apache-2.0
#pragma once

// Text and JSON renderings of a snapshot.
//
// Both writers are total: any span name, whatever bytes it holds, yields one
// line per node in text and valid JSON, so a dump never breaks the tool that
// reads it.

#include <await_tree/detail/utf8.hpp>
#include <await_tree/tree.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace await_tree {
namespace detail {

/// `1.006s`, `12.345ms`, `3.210µs` or `87ns`: the unit is chosen by magnitude,
/// then the value rounded to three decimals (the Rust crate's `{:.3?}`).
///
/// `Out` is a std::string, or any sink with `push_back` and `+=`: the crash
/// handlers write into a fixed buffer, which fmt fills without allocating.
template <class Out>
void append_duration(Out& out, std::chrono::nanoseconds elapsed) {
  const std::int64_t ns = elapsed.count() < 0 ? 0 : elapsed.count();
  const auto with_unit = [&](std::int64_t unit, std::string_view suffix) {
    const std::int64_t thousandths = (ns * 1000 + unit / 2) / unit;
    fmt::format_to(std::back_inserter(out), "{}.{:03}{}", thousandths / 1000, thousandths % 1000,
                   suffix);
  };
  if (ns >= 1'000'000'000) {
    with_unit(1'000'000'000, "s");
  } else if (ns >= 1'000'000) {
    with_unit(1'000'000, "ms");
  } else if (ns >= 1'000) {
    with_unit(1'000, "µs");
  } else {
    fmt::format_to(std::back_inserter(out), "{}ns", ns);
  }
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

/// Calls `on_char(code_point, bytes)` for each well-formed UTF-8 sequence of
/// `text` and `on_bad_byte(byte)` for each byte that starts none.
template <class OnChar, class OnBadByte>
void for_each_char(std::string_view text, OnChar on_char, OnBadByte on_bad_byte) {
  for (std::size_t pos = 0; pos < text.size();) {
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
  for_each_char(
      name,
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
  for_each_char(
      text,
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

/// One node's line, preceded by a `[Detached N]` line when it roots a
/// detached subtree; `in_detached` carries that state from node to node of
/// one tree. `Node` is a tree::node or a live tree_state::node_view.
template <class Out, class Node>
void append_text_node(Out& out, const Node& n, bool& in_detached,
                      std::chrono::nanoseconds threshold) {
  if (n.is_detached_root) {
    in_detached = true;
    fmt::format_to(std::back_inserter(out), "[Detached {}]\n", n.id);
  }
  out.append(2 * std::size_t{n.depth + (in_detached ? 1U : 0U)}, ' ');  // detached: one level in
  append_text_escaped(out, n.span.name());
  out += is_stuck(n.span, n.elapsed, threshold) ? " [!!! " : " [";
  append_duration(out, n.elapsed);
  out += ']';
  if (n.is_current) out += "  <== current";
  out += '\n';
}

inline void append_json_node_head(std::string& out, const tree::node& n) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, R"({{"id":{},"span":{{"name":)", n.id);
  append_json_string(out, n.span.name());
  fmt::format_to(it, R"(,"is_verbose":{},"is_long_running":{}}},"elapsed_ns":{},"children":[)",
                 n.span.is_verbose(), n.span.is_long_running(), n.elapsed.count());
}

/// Writes nodes [first, last), which hold one subtree in display order, as
/// nested JSON objects; `head(out, node)` writes a node's fields up to its
/// open `"children":[`. Iterative, so that depth costs no stack.
template <class It, class Head>
void append_json_subtree(std::string& out, It first, It last, Head head) {
  std::vector<std::uint32_t> open;  // depths of the objects not yet closed
  for (It n = first; n != last; ++n) {
    const bool has_elder_sibling = !open.empty() && open.back() >= n->depth;
    for (; !open.empty() && open.back() >= n->depth; open.pop_back()) out += "]}";
    if (has_elder_sibling) out += ',';
    head(out, *n);
    open.push_back(n->depth);
  }
  for (; !open.empty(); open.pop_back()) out += "]}";
}

/// `"tree":...,"detached":[...]` for nodes in display order (the main tree,
/// then each detached subtree): the shape shared by a tree and a group of
/// trees in JSON.
template <class Node, class Head>
void append_json_forest(std::string& out, const std::vector<Node>& nodes, Head head) {
  const auto is_detached_root = [](const Node& n) { return n.is_detached_root; };
  const auto detached = std::find_if(nodes.begin(), nodes.end(), is_detached_root);
  out += R"("tree":)";
  if (nodes.empty()) {
    out += "null";
  } else {
    append_json_subtree(out, nodes.begin(), detached, head);
  }
  out += R"(,"detached":[)";
  for (auto n = detached; n != nodes.end();) {
    const auto end = std::find_if(n + 1, nodes.end(), is_detached_root);
    if (n != detached) out += ',';
    append_json_subtree(out, n, end, head);
    n = end;
  }
  out += ']';
}

}  // namespace detail

inline std::string tree::to_string() const {
  std::string out;
  bool in_detached = false;
  for (const node& n : nodes_) detail::append_text_node(out, n, in_detached, threshold_);
  return out;
}

inline std::string tree::to_json() const {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, R"({{"current":{},)", current_id_);
  detail::append_json_forest(out, nodes_, &detail::append_json_node_head);
  out += R"(,"current_ids":[)";
  bool first = true;
  for (const node& n : nodes_) {
    if (!n.is_current) continue;
    fmt::format_to(it, "{}{}", first ? "" : ",", n.id);
    first = false;
  }
  out += "]}";
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
