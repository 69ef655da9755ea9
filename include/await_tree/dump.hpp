// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/registry.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace await_tree {

/// Every tree of `reg` as text, each headed by its key in brackets, ordered
/// by key.
[[nodiscard]] inline std::string dump_to_string(const registry& reg) {
  auto trees = reg.collect_all();
  std::sort(trees.begin(), trees.end(),
            [](const auto& a, const auto& b) { return a.first.to_string() < b.first.to_string(); });
  std::string out;
  for (const auto& [key, t] : trees) {
    fmt::format_to(std::back_inserter(out), "[{}]\n{}\n", key, t.to_string());
  }
  return out;
}

/// Writes every tree of `reg` to `out`.
inline void dump(const registry& reg, std::FILE* out = stderr) {
  const std::string text = dump_to_string(reg);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

/// Writes every tree of the global registry to `out`, or says that there is
/// none.
inline void dump(std::FILE* out = stderr) {
  if (const registry* reg = global_registry(); reg != nullptr) {
    dump(*reg, out);
  } else {
    std::fputs("await-tree: no global registry (call await_tree::init_global_registry())\n", out);
    std::fflush(out);
  }
}

}  // namespace await_tree
