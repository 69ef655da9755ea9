// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace await_tree::detail {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// The run of digits starting at `pos`, and where it ends.
constexpr std::pair<std::string_view, std::size_t> digit_run(std::string_view s,
                                                             std::size_t pos) noexcept {
  std::size_t end = pos;
  while (end < s.size() && is_digit(s[end])) ++end;
  std::size_t first = pos;
  while (first + 1 < end && s[first] == '0') ++first;  // leading zeros do not count
  return {s.substr(first, end - first), end};
}

/// Natural order: runs of digits compare as numbers, everything else byte by
/// byte, so that "worker 2" comes before "worker 10".
constexpr bool natural_less(std::string_view a, std::string_view b) noexcept {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      const auto [x, x_end] = digit_run(a, i);
      const auto [y, y_end] = digit_run(b, j);
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = x_end;
      j = y_end;
    } else if (a[i] != b[j]) {
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    } else {
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace await_tree::detail
