// SPDX-License-Identifier: Apache-2.0
#pragma once

// A function's name as a person writes it, from the signature a compiler
// gives std::source_location::function_name():
//
//   GCC:   task<int> ns::{anonymous}::S<T>::read(int) const [with T = int]
//   Clang: task<int> ns::(anonymous namespace)::S<int>::read(int) const [T = int]
//   both:  ns::S::read
//
// No return type, parameter list, qualifiers, template arguments or
// anonymous namespaces; a lambda is `<lambda>` (GCC's `<lambda(int)>`,
// Clang's `(anonymous class)::operator()`). Constexpr, so that the tests can
// check it at compile time; it runs once per call site (call_site.hpp).

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace await_tree::detail {

constexpr bool is_identifier_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// Whether `text` has the word `operator` at `pos`.
constexpr bool is_operator_at(std::string_view text, std::size_t pos) noexcept {
  constexpr std::string_view word = "operator";
  return text.substr(pos, word.size()) == word &&
         (pos == 0 || !is_identifier_char(text[pos - 1])) &&
         (pos + word.size() == text.size() || !is_identifier_char(text[pos + word.size()]));
}

/// Past the symbol of the operator whose word starts at `pos`: `()`, `<<=`,
/// `->`, ... (a named one, `operator new`, ends where identifiers do).
constexpr std::size_t skip_operator(std::string_view text, std::size_t pos) noexcept {
  pos += std::string_view("operator").size();
  if (text.substr(pos, 2) == "()" || text.substr(pos, 2) == "[]") return pos + 2;
  constexpr std::string_view symbol_chars = "<>=!+-*/%^&|~,";
  while (pos < text.size() && symbol_chars.find(text[pos]) != std::string_view::npos) ++pos;
  return pos;
}

/// Scans `text` outside brackets: calls `at_top(pos)` for each position at
/// bracket depth 0 (operator symbols skipped), stopping when it returns
/// false. Returns where the scan stopped.
template <class AtTop>
constexpr std::size_t scan_top_level(std::string_view text, AtTop at_top) {
  int depth = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    if (depth == 0 && is_operator_at(text, pos)) {
      if (!at_top(pos)) return pos;
      pos = skip_operator(text, pos);
      continue;
    }
    const char c = text[pos];
    if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == '>' || c == ']' || c == '}') && depth > 0) --depth;
    if (depth == 0 && !at_top(pos)) return pos;
    ++pos;
  }
  return text.size();
}

/// Without a trailing ` [with T = int]` (GCC) or ` [T = int]` (Clang).
constexpr std::string_view drop_template_bindings(std::string_view text) noexcept {
  if (text.empty() || text.back() != ']') return text;
  int depth = 0;
  for (std::size_t pos = text.size(); pos-- > 0;) {
    if (text[pos] == ']') ++depth;
    if (text[pos] == '[' && --depth == 0) {
      return pos > 0 && text[pos - 1] == ' ' ? text.substr(0, pos - 1) : text;
    }
  }
  return text;
}

/// Without the parameter list and what follows it (`const`, `&&`,
/// `noexcept`), when the text ends with one.
constexpr std::string_view drop_parameter_list(std::string_view text) noexcept {
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) return text;
  for (const char c : text.substr(close + 1)) {
    if (!is_identifier_char(c) && c != ' ' && c != '&') return text;  // `<lambda(int)>`
  }
  int depth = 0;
  for (std::size_t pos = close + 1; pos-- > 0;) {
    if (text[pos] == ')') ++depth;
    if (text[pos] == '(' && --depth == 0) return text.substr(0, pos);
  }
  return text;
}

/// Without the return type (and `static`, `virtual`): what follows the last
/// space outside brackets before the name's operator, if any.
constexpr std::string_view drop_return_type(std::string_view text) {
  std::size_t start = 0;
  scan_top_level(text, [&](std::size_t pos) {
    if (is_operator_at(text, pos)) return false;
    if (text[pos] == ' ') start = pos + 1;
    return true;
  });
  return text.substr(start);
}

/// One `::`-separated part of a qualified name as shown: `S<T>` is `S`,
/// `main()` is `main`, an operator keeps its symbol (`operator int` its type).
constexpr std::string_view tidy_component(std::string_view part) {
  if (is_operator_at(part, 0)) {
    const std::size_t end = skip_operator(part, 0);
    return end < part.size() && part[end] == ' ' ? part : part.substr(0, end);
  }
  return part.substr(0, std::min(part.find('('), part.find('<')));
}

constexpr bool is_anonymous_namespace(std::string_view part) noexcept {
  return part == "{anonymous}" || part == "(anonymous namespace)";
}

/// GCC's `<lambda(int)>`, Clang's `(anonymous class)` or `(lambda at f.cpp:3:5)`.
constexpr bool is_lambda(std::string_view part) noexcept {
  return part.starts_with("<lambda") || part == "(anonymous class)" ||
         part.starts_with("(lambda at ");
}

/// Writes the short name of `pretty` to `out`, which has room for
/// pretty.size() characters (the short name is never longer), and returns
/// its length. No std::string: Clang 16 cannot evaluate libstdc++ 12's in a
/// constant expression.
constexpr std::size_t short_function_name(std::string_view pretty, char* out) {
  const std::string_view name =
      drop_return_type(drop_parameter_list(drop_template_bindings(pretty)));
  std::size_t size = 0;
  const auto append = [&](std::string_view text) {
    for (const char c : text) out[size++] = c;
  };
  bool after_lambda = false;
  const auto add_part = [&](std::string_view part) {
    if (is_anonymous_namespace(part) || (after_lambda && part == "operator()")) return;
    after_lambda = is_lambda(part);
    if (size > 0) append("::");
    append(after_lambda ? std::string_view("<lambda>") : tidy_component(part));
  };
  std::size_t part_start = 0;
  scan_top_level(name, [&](std::size_t pos) {
    if (name.substr(pos, 2) == "::") {
      add_part(name.substr(part_start, pos - part_start));
      part_start = pos + 2;
    }
    return true;
  });
  add_part(name.substr(part_start));
  return size;
}

}  // namespace await_tree::detail
