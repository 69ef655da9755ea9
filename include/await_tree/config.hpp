// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <ctime>

namespace await_tree {

/// Reads a monotonic clock. Tests and simulations pass their own to make the
/// durations in a snapshot deterministic.
using clock_function = std::chrono::nanoseconds (*)() noexcept;

/// `std::chrono::steady_clock`: nanosecond resolution, for a config that
/// wants it. About 24 ns per read on a typical x86-64 virtual machine.
inline std::chrono::nanoseconds steady_now() noexcept {
  return std::chrono::steady_clock::now().time_since_epoch();
}

/// The default clock, read at every instrumented await: the kernel's coarse
/// monotonic clock, about 5 ns per read, with the resolution of its tick (1 to
/// 4 ms on Linux), which is plenty for awaits that hang for seconds. Where
/// there is no such clock, `steady_now`. Safe in a signal handler.
inline std::chrono::nanoseconds coarse_now() noexcept {
#ifdef CLOCK_MONOTONIC_COARSE
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
#else
  return steady_now();
#endif
}

struct config {
  /// Record spans marked `verbose()`; they are skipped otherwise.
  bool verbose = false;
  /// A pending node older than this, unless long-running, is flagged `!!!`.
  std::chrono::nanoseconds long_running_threshold = std::chrono::seconds(10);
  /// Where start times and snapshot instants come from.
  clock_function clock = &coarse_now;
};

namespace detail {
/// `cfg` with its clock resolved (a null clock is the default one), so that
/// a registry reads its clock without a test.
[[nodiscard]] inline config resolved(config cfg) noexcept {
  if (cfg.clock == nullptr) cfg.clock = &coarse_now;
  return cfg;
}
}  // namespace detail

}  // namespace await_tree
