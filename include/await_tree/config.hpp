// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>

namespace await_tree {

/// Reads a monotonic clock. Tests and simulations pass their own to make the
/// durations in a snapshot deterministic.
using clock_function = std::chrono::nanoseconds (*)() noexcept;

/// The clock used when `config::clock` is left empty.
inline std::chrono::nanoseconds steady_now() noexcept {
  return std::chrono::steady_clock::now().time_since_epoch();
}

struct config {
  /// Record spans marked `verbose()`; they are skipped otherwise.
  bool verbose = false;
  /// A pending node older than this, unless long-running, is flagged `!!!`.
  std::chrono::nanoseconds long_running_threshold = std::chrono::seconds(10);
  /// Where start times and snapshot instants come from.
  clock_function clock = &steady_now;
};

}  // namespace await_tree
