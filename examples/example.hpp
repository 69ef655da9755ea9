// SPDX-License-Identifier: Apache-2.0
#pragma once

// What every example shares: how long a "second" of its story lasts, and how
// it prints the trees at each checkpoint.

#include <await_tree/await_tree.hpp>

#include <chrono>
#include <cstdio>
#include <string_view>

namespace example {

/// One second, or 10 ms when the example runs with `--fast` (as CTest does).
inline std::chrono::nanoseconds second(int argc, char** argv) {
  using namespace std::chrono_literals;
  const bool fast = argc > 1 && std::string_view(argv[1]) == "--fast";
  return fast ? std::chrono::nanoseconds(10ms) : std::chrono::nanoseconds(1s);
}

/// Every tree of `reg`, under a heading that says when it was taken.
inline void print_trees(const await_tree::registry& reg, std::string_view when) {
  std::printf("--- %.*s ---\n", static_cast<int>(when.size()), when.data());
  await_tree::dump(reg, stdout);
}

}  // namespace example
