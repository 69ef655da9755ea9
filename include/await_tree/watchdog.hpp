// SPDX-License-Identifier: Apache-2.0
#pragma once

// A stall watchdog: a background thread looks at every task's tree at each
// interval and reports each task that has waited too long at one node, once
// per stall, and each suspected deadlock (wait_cycles.hpp), once per cycle.

#include <await_tree/any_key.hpp>
#include <await_tree/detail/fork_guard.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/registry.hpp>
#include <await_tree/tree.hpp>
#include <await_tree/wait_cycles.hpp>
#include <await_tree/waiting.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace await_tree {

/// A task found stalled: it has been waiting at `node`, its
/// longest_waiting_leaf, for at least the watchdog's threshold.
struct stall {
  any_key key;
  tree snapshot;
  tree::node node;
};

/// The default report: a line naming the task, how long it has waited and
/// where, then its tree.
inline void print_stall(const stall& s, std::FILE* out = stderr) {
  std::string text = fmt::format("await-tree watchdog: task [{}] has been waiting ", s.key);
  detail::append_duration(text, s.node.elapsed);
  text += " at \"";
  detail::append_text_name(text, s.node.span.name(), format_limits{});
  text += "\"\n" + s.snapshot.to_string() + '\n';
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

/// The default report of a suspected deadlock: the dump's section for it.
inline void print_wait_cycle(const wait_cycle& c, std::chrono::nanoseconds threshold,
                             std::FILE* out = stderr) {
  std::string text = "await-tree watchdog: ";
  detail::append_cycle_text(text, c, threshold, format_limits{});
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

struct watchdog_options {
  /// The registry to watch; the global registry when empty.
  std::optional<registry> source{};
  /// Time between two scans. Zero: no thread, check() is called by the user.
  std::chrono::milliseconds interval{1000};
  /// How long a leaf must be pending for its task to count as stalled; each
  /// tree's long_running_threshold (the registry's config) when empty.
  std::optional<std::chrono::nanoseconds> threshold{};
  /// Called with each new stall, on the watchdog's thread (or in check()).
  /// print_stall to stderr when empty.
  std::function<void(const stall&)> on_stall{};
  /// Called with each new suspected deadlock (a cycle of waits all at least
  /// the threshold old, or the registry's long_running_threshold), once until
  /// that cycle dissolves. print_wait_cycle to stderr when empty.
  std::function<void(const wait_cycle&)> on_deadlock{};
};

/// Reports each task whose longest_waiting_leaf, a node that is not
/// long-running, has been pending for at least a threshold. A stall is
/// reported once: again only after that node has gone and another stalls.
///
/// In a child made by fork() the thread does not exist: the child's copy of
/// a watchdog scans only when check() is called there, and stop() and the
/// destructor return at once.
///
///     await_tree::watchdog dog({.interval = std::chrono::seconds(5)});
class watchdog final : private detail::fork_participant {
 public:
  /// Starts the thread unless the interval is zero. Throws
  /// std::invalid_argument for a negative interval.
  explicit watchdog(watchdog_options options = {}) : options_(std::move(options)) {
    if (options_.interval.count() < 0) {
      throw std::invalid_argument("await-tree: watchdog interval must not be negative");
    }
    enroll_for_fork();
    try {
      if (options_.interval.count() > 0) thread_ = std::thread([this] { run(); });
    } catch (...) {
      withdraw_from_fork();
      throw;
    }
  }

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    stop();
    withdraw_from_fork();
  }

  /// Stops and joins the thread; idempotent.
  void stop() {
    if (generation_ != detail::fork_generation()) {
      // A forked child's copy: the thread, and whatever it held of the stop
      // mutex and the condition variable, stayed in the parent.
      detail::forget_thread_in_child(thread_);
      return;
    }
    {
      const std::lock_guard lock(stop_mutex_);
      stop_requested_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  /// Scans once, on the calling thread, reports the new stalls (the longest
  /// first), then the new suspected deadlocks, and returns how many reports
  /// there were. An exception from a callback propagates (on the watchdog's
  /// thread it is printed to stderr instead).
  std::size_t check() {
    const registry* reg = options_.source ? &*options_.source : global_registry();
    if (reg == nullptr) return 0;
    const findings fresh = find_new(*reg);
    for (const stall& s : fresh.stalls) {
      if (options_.on_stall) {
        options_.on_stall(s);
      } else {
        print_stall(s);
      }
    }
    for (const wait_cycle& c : fresh.deadlocks) {
      if (options_.on_deadlock) {
        options_.on_deadlock(c);
      } else {
        print_wait_cycle(c, fresh.threshold);
      }
    }
    return fresh.stalls.size() + fresh.deadlocks.size();
  }

 private:
  /// Names one stall across scans. Node ids are reused, so the node's start
  /// (relative to its root's, which a snapshot can tell) and its name are
  /// part of it.
  struct stall_mark {
    std::uint32_t id;
    std::chrono::nanoseconds start;
    std::string name;
    friend bool operator==(const stall_mark&, const stall_mark&) = default;
  };

  /// A cycle across scans: its tasks' keys, from the least one on.
  using cycle_mark = std::vector<std::string>;

  struct findings {
    std::vector<stall> stalls;
    std::vector<wait_cycle> deadlocks;
    std::chrono::nanoseconds threshold{};
  };

  /// The snapshot and its analysis are taken before marks_mutex_, which then
  /// guards only the marks: its holder never waits for another lock (see
  /// lock_for_fork). Of two scans at once, one from an older snapshot that
  /// comes second finds nothing new, rather than bring back marks that the
  /// newer one dropped.
  findings find_new(const registry& reg) {
    findings fresh;
    const std::uint64_t scan = scans_started_.fetch_add(1) + 1;
    std::vector<std::pair<any_key, tree>> trees = reg.collect_all();
    fresh.threshold = options_.threshold.value_or(reg.settings().long_running_threshold);
    wait_report waits = analyze_waits(trees, fresh.threshold);
    const std::lock_guard lock(marks_mutex_);
    if (scan < latest_scan_applied_) return fresh;
    latest_scan_applied_ = scan;
    fresh.stalls = new_stalls(trees);
    fresh.deadlocks = new_deadlocks(std::move(waits.cycles));
    return fresh;
  }

  static cycle_mark mark_of(const wait_cycle& c) {
    cycle_mark mark;
    for (const any_key& k : c.tasks) mark.push_back(k.to_string());
    std::rotate(mark.begin(), std::min_element(mark.begin(), mark.end()), mark.end());
    return mark;
  }

  /// Requires marks_mutex_.
  std::vector<wait_cycle> new_deadlocks(std::vector<wait_cycle> cycles) {
    std::vector<wait_cycle> fresh;
    std::set<cycle_mark> marks;
    for (wait_cycle& c : cycles) {
      if (!c.suspected_deadlock) continue;
      cycle_mark mark = mark_of(c);
      if (!cycle_marks_.contains(mark)) fresh.push_back(std::move(c));
      marks.insert(std::move(mark));
    }
    cycle_marks_ = std::move(marks);  // cycles that dissolved are forgotten
    return fresh;
  }

  /// Requires marks_mutex_.
  std::vector<stall> new_stalls(std::vector<std::pair<any_key, tree>>& trees) {
    std::vector<stall> fresh;
    std::unordered_map<any_key, stall_mark> marks;
    for (auto& [key, t] : trees) {
      const tree::node* leaf = longest_waiting_leaf(t);
      const auto threshold = options_.threshold.value_or(t.long_running_threshold());
      if (leaf == nullptr || leaf->elapsed < threshold) continue;
      stall_mark mark{leaf->id, t.nodes().front().elapsed - leaf->elapsed,
                      std::string(leaf->span.name())};
      if (const auto known = marks_.find(key); known == marks_.end() || known->second != mark) {
        tree::node node = *leaf;
        fresh.push_back({key, std::move(t), std::move(node)});
      }
      marks.emplace(key, std::move(mark));
    }
    marks_ = std::move(marks);  // tasks no longer stalled are forgotten
    std::stable_sort(fresh.begin(), fresh.end(), [](const stall& a, const stall& b) {
      return a.node.elapsed > b.node.elapsed;
    });
    return fresh;
  }

  void run() {
    std::unique_lock lock(stop_mutex_);
    while (!wake_.wait_for(lock, options_.interval, [this] { return stop_requested_; })) {
      lock.unlock();
      check_printing_errors();
      lock.lock();
    }
  }

  void check_printing_errors() noexcept {
    try {
      check();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "await-tree watchdog: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "await-tree watchdog: on_stall threw\n");
    }
  }

  /// Keeps the marks whole in a forked child, whose check() needs them.
  void lock_for_fork() noexcept override { marks_mutex_.lock(); }
  void unlock_after_fork(bool /*in_child*/) noexcept override { marks_mutex_.unlock(); }

  watchdog_options options_;
  unsigned generation_ = detail::fork_generation();
  std::mutex marks_mutex_;
  std::unordered_map<any_key, stall_mark> marks_;  // the stalls reported, by task
  std::set<cycle_mark> cycle_marks_;               // the deadlocks reported
  std::atomic<std::uint64_t> scans_started_{0};
  std::uint64_t latest_scan_applied_ = 0;  // guarded by marks_mutex_
  std::mutex stop_mutex_;
  std::condition_variable wake_;
  bool stop_requested_ = false;
  std::thread thread_;
};

}  // namespace await_tree
