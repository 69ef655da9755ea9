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
inline void append_duration(std::string& out, std::chrono::nanoseconds elapsed) {
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
/// bytes that are not UTF-8 shown as `\xNN`.
inline void append_text_escaped(std::string& out, std::string_view name) {
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

inline bool is_stuck(const tree::node& n, std::chrono::nanoseconds threshold) noexcept {
  return !n.span.is_long_running() && n.elapsed >= threshold;
}

inline void append_text_line(std::string& out, const tree::node& n, std::uint32_t depth,
                             std::chrono::nanoseconds threshold) {
  out.append(2 * std::size_t{depth}, ' ');
  append_text_escaped(out, n.span.name());
  out += is_stuck(n, threshold) ? " [!!! " : " [";
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
/// nested JSON objects. Iterative, so that depth costs no stack.
template <class It>
void append_json_subtree(std::string& out, It first, It last) {
  std::vector<std::uint32_t> open;  // depths of the objects not yet closed
  for (It n = first; n != last; ++n) {
    const bool has_elder_sibling = !open.empty() && open.back() >= n->depth;
    for (; !open.empty() && open.back() >= n->depth; open.pop_back()) out += "]}";
    if (has_elder_sibling) out += ',';
    append_json_node_head(out, *n);
    open.push_back(n->depth);
  }
  for (; !open.empty(); open.pop_back()) out += "]}";
}

}  // namespace detail

inline std::string tree::to_string() const {
  std::string out;
  bool in_detached = false;  // detached subtrees are indented one level
  for (const node& n : nodes_) {
    if (n.is_detached_root) {
      in_detached = true;
      fmt::format_to(std::back_inserter(out), "[Detached {}]\n", n.id);
    }
    detail::append_text_line(out, n, n.depth + (in_detached ? 1 : 0), threshold_);
  }
  return out;
}

inline std::string tree::to_json() const {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, R"({{"current":{},"tree":)", current_id_);
  const auto detached = first_detached();
  if (nodes_.empty()) {
    out += "null";
  } else {
    detail::append_json_subtree(out, nodes_.begin(), detached);
  }
  out += R"(,"detached":[)";
  for (auto n = detached; n != nodes_.end();) {
    auto end = std::find_if(n + 1, nodes_.end(), [](const node& x) { return x.is_detached_root; });
    if (n != detached) out += ',';
    detail::append_json_subtree(out, n, end);
    n = end;
  }
  out += R"(],"current_ids":[)";
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
