// SPDX-License-Identifier: Apache-2.0
#pragma once

// For the multi-threaded tests: a thread that snapshots a registry in a loop
// and checks every snapshot, a log of what failed on other threads, and a
// bounded wait for a condition.

#include <await_tree/await_tree.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace test {

/// Polls `condition` until it holds or `limit` passes.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

/// Failures seen on the worker threads, for the test thread to assert on.
class failure_log {
 public:
  void record(std::string what) {
    const std::lock_guard lock(mutex_);
    if (count_++ == 0) first_ = std::move(what);
  }
  [[nodiscard]] long count() const {
    const std::lock_guard lock(mutex_);
    return count_;
  }
  [[nodiscard]] std::string first() const {
    const std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  mutable std::mutex mutex_;
  long count_ = 0;
  std::string first_;
};

/// Whether a snapshot is a well-formed tree: the root first at depth 0, every
/// node at most one level below the one before it, detached roots at depth
/// 0, and no node id twice.
inline bool well_formed(const await_tree::tree& t) {
  const auto& nodes = t.nodes();
  if (nodes.empty() || nodes[0].depth != 0 || nodes[0].is_detached_root) return false;
  std::vector<std::uint32_t> seen;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    if (i > 0 && n.depth > nodes[i - 1].depth + 1) return false;
    if (i > 0 && (n.depth == 0) != n.is_detached_root) return false;
    if (std::find(seen.begin(), seen.end(), n.id) != seen.end()) return false;
    seen.push_back(n.id);
  }
  return true;
}

/// Snapshots every tree of a registry in a loop, rendering each, and counts
/// the snapshots and the malformed ones.
///
/// `also_valid` adds a check of the test's own (which tree may hold which
/// nodes, say); it runs on the snapshotting thread.
class snapshotter {
 public:
  using tree_check = std::function<bool(const await_tree::any_key&, const await_tree::tree&)>;

  explicit snapshotter(const await_tree::registry& reg, tree_check also_valid = nullptr)
      : also_valid_(std::move(also_valid)), thread_([this, &reg] {
          while (!stop_.load()) {
            for (const auto& [key, t] : reg.collect_all()) {
              if (!valid(key, t)) ++malformed_;
              ++snapshots_;
            }
          }
        }) {}
  snapshotter(const snapshotter&) = delete;
  snapshotter& operator=(const snapshotter&) = delete;
  ~snapshotter() { stop(); }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] long snapshots() const noexcept { return snapshots_.load(); }
  [[nodiscard]] long malformed() const noexcept { return malformed_.load(); }

 private:
  [[nodiscard]] bool valid(const await_tree::any_key& key, const await_tree::tree& t) const {
    return well_formed(t) && !t.to_string().empty() && !t.to_json().empty() &&
           (!also_valid_ || also_valid_(key, t));
  }

  tree_check also_valid_;
  std::atomic<bool> stop_{false};
  std::atomic<long> snapshots_{0};
  std::atomic<long> malformed_{0};
  std::thread thread_;
};

}  // namespace test
