// SPDX-License-Identifier: Apache-2.0
#pragma once

// The bounds that keep a dump linear in the size of the trees, whatever
// their shape: a dump is often taken when things already go wrong, and must
// not be what kills the process.

#include <cstddef>
#include <cstdint>
#include <limits>

namespace await_tree {

inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

/// The byte limit of the dumps made by the signal and crash handlers, unless
/// told otherwise: they must finish whatever the trees look like.
inline constexpr std::size_t handler_max_bytes = std::size_t{16} << 20;

struct format_limits {
  /// Text lines deeper than this keep its indentation (two spaces a level)
  /// and start with `[depth N] `, so that text is O(nodes), not O(depth²).
  std::uint32_t max_indent_depth = 64;
  /// Text shows a longer span name cut to this many bytes (on a UTF-8
  /// boundary), followed by `... (N bytes)`.
  std::size_t max_name_bytes = 1024;
  /// JSON keeps names whole unless this is set; then it cuts them as text does.
  bool shorten_json_names = false;
  /// At most this many nodes of each tree are shown (in display order); a
  /// last line (`"omitted_nodes"` in JSON) counts the rest.
  std::size_t max_nodes = unlimited;
};

}  // namespace await_tree
