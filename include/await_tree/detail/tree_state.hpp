// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/config.hpp>
#include <await_tree/detail/counted_ref.hpp>
#include <await_tree/detail/recycling_pool.hpp>
#include <await_tree/detail/spin_mutex.hpp>
#include <await_tree/detail/thread_context.hpp>
#include <await_tree/span.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace await_tree {
class tree;
}  // namespace await_tree

namespace await_tree::detail {

inline constexpr node_id no_node = std::numeric_limits<node_id>::max();
/// Slot 0 is a hidden node whose children are the detached subtrees, so that
/// detaching is an ordinary re-parenting.
inline constexpr node_id detached_container = 0;
inline constexpr node_id root_node = 1;

/// One task's live await-tree: an arena of nodes behind a lock.
///
/// A node keeps only its parent (by slot and serial number), not its
/// children: adding and removing one touches no other node. A node whose
/// parent is gone (the parent's serial moved on) is a detached root from
/// then on, without being visited; snapshots gather the children.
///
/// Lifetime is reference counted. References are held by the task's root
/// (until it ends), by snapshots in progress, by context captures, and by the
/// instrumented nodes that outlive the root, as a group. While the root lives
/// it keeps the tree alive for its nodes, so adding and removing a node
/// touches no atomic.
///
/// The last release does not free the tree: it goes back to a pool, its
/// incarnation counted up. Positions held by threads and coroutines (see
/// thread_context.hpp) may therefore outlive their tree without dangling;
/// `is_open_at()` tells whether one still names this incarnation of a task
/// that runs.
///
/// Every member function except `create`, `acquire`, `release` and `lock`
/// requires the mutex to be held by the caller.
class tree_state {
 public:
  /// A tree whose root started at `start` (by `cfg`'s clock, which must be
  /// resolved: see detail::resolved).
  static tree_state* create(span&& root, const config& cfg, std::chrono::nanoseconds start) {
    tree_state* t = pool::instance().take();
    if (t == nullptr) t = make_new();
    const auto lock = t->lock();
    t->open(std::move(root), cfg, start);
    return t;
  }

  tree_state(const tree_state&) = delete;
  tree_state& operator=(const tree_state&) = delete;

  void acquire() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    {
      const auto lock = this->lock();
      retire();
    }
    pool::instance().give_back(this);
  }

  /// The task has ended: closes the tree and gives up the root's reference,
  /// under one lock when that is the last reference (a root whose nodes are
  /// all done, and that no snapshot is copying). Only for callers that are
  /// out of line and no coroutine body: it reads the pool's thread-local
  /// cache in place.
  [[gnu::always_inline]] void close_and_release() noexcept {
    {
      const auto lock = this->lock();
      close();
      if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      retire();
    }
    pool::instance().give_back_in_place(this);
  }

  [[nodiscard]] std::unique_lock<spin_mutex> lock() noexcept { return std::unique_lock(mutex_); }
  /// The pool's lock, for fork(): see fork_guard.hpp.
  [[nodiscard]] static spin_mutex& pool_mutex() noexcept { return pool::instance().mutex(); }
  /// See try_lock_briefly.
  [[nodiscard]] std::unique_lock<spin_mutex> try_lock_briefly() noexcept {
    return detail::try_lock_briefly(mutex_);
  }

  [[nodiscard]] bool is_closed() const noexcept { return closed_; }
  [[nodiscard]] bool records(const span& s) const noexcept { return verbose_ || !s.is_verbose(); }
  [[nodiscard]] node_ref root() const noexcept { return {root_node, slots_[root_node].serial}; }

  [[nodiscard]] std::uint32_t incarnation() const noexcept { return incarnation_; }
  [[nodiscard]] position at(node_ref n) noexcept { return {this, incarnation_, n}; }
  [[nodiscard]] position root_position() noexcept { return at(root()); }

  /// Whether `p` names this incarnation while its task runs (its node may be
  /// gone).
  [[nodiscard]] bool is_open_at(const position& p) const noexcept {
    return p.tree == this && p.incarnation == incarnation_ && !closed_;
  }

  [[nodiscard]] bool contains(node_ref n) const noexcept {
    return n.id < slots_.size() && slots_[n.id].live() && slots_[n.id].serial == n.serial;
  }

  /// The parent of `n` (a detached root's is the hidden detached container).
  [[nodiscard]] node_ref parent_of(node_ref n) const noexcept {
    const node_id p = parent_id(n.id);
    return {p, slots_[p].serial};
  }

  /// Adds an instrumented node under `parent`, or as a detached root when the
  /// parent is gone.
  node_ref add(node_ref parent, const span* label) {
    const node_id id = allocate();
    slot& s = slots_[id];
    s.label = label;
    s.start = clock_();
    s.order = static_cast<std::uint32_t>(next_order_++);
    s.parent = parent;  // if it is gone already, the node is detached (see parent_id)
    ++instrumented_nodes_;
    return {id, s.serial};
  }

  /// Moves `n` (and its subtree) under `parent`; a no-op when that would put a
  /// node inside its own subtree.
  void reattach(node_ref n, node_ref parent) noexcept {
    if (!contains(parent)) {
      slots_[n.id].parent = parent;  // detached
      return;
    }
    for (node_id a = parent.id; a != no_node; a = parent_id(a)) {
      if (a == n.id) return;
    }
    slots_[n.id].parent = parent;
  }

  void relabel(node_ref n, const span* label) noexcept { slots_[n.id].label = label; }

  /// Removes `n`; its children become detached subtrees (their parent's
  /// serial moves on). Returns true when it was the last instrumented node of
  /// an ended task: the caller then calls `release()` once it has unlocked
  /// the mutex.
  [[nodiscard]] bool remove(node_ref n) noexcept {
    free_slot(n.id);
    return --instrumented_nodes_ == 0 && closed_;
  }

  /// Ends the task: no node is added from now on, and the root's subtrees are
  /// detached. The caller then releases the root's reference, unlocked; the
  /// nodes still pending take one of their own (see remove).
  void close() noexcept {
    closed_ = true;
    ++slots_[root_node].serial;  // the root's subtrees are detached
    if (instrumented_nodes_ > 0) acquire();
  }

  [[nodiscard]] tree snapshot() const;
  /// A snapshot whose nodes are appended to `storage` (a
  /// tree::node_storage, which this header does not see).
  template <class NodeStorage>
  [[nodiscard]] tree snapshot_into(const std::shared_ptr<NodeStorage>& storage) const;
  /// Starts loading the nodes' spans, before a snapshot reads them.
  void prefetch_labels() const noexcept;

  /// One node as walk() shows it; the members are named as tree::node's, so
  /// that the text format serves both.
  struct node_view {
    node_id id;
    const await_tree::span& span;
    std::chrono::nanoseconds elapsed;
    std::uint32_t depth;
    bool is_current;
    bool is_detached_root;
  };

  /// Calls `visit(node_view)` for each node, in the order of snapshot(),
  /// without allocating: the crash handlers' snapshot. Each next node is
  /// found by scanning the arena (nodes keep no child lists), which is
  /// quadratic in the tree's size, so the walk stops as soon as `visit`
  /// returns false.
  template <class Visit>
  void walk(Visit visit) const {
    const std::chrono::nanoseconds now = clock_();
    const running_set running =
        running_nodes([](spin_mutex& m) { return detail::try_lock_briefly(m); });
    if (!walk_subtree(root_node, now, running, visit)) return;
    for (node_id d = next_child_by_start(detached_container, no_node); d != no_node;
         d = next_child_by_start(detached_container, d)) {
      if (!walk_subtree(d, now, running, visit)) return;
    }
  }

  [[nodiscard]] std::chrono::nanoseconds long_running_threshold() const noexcept {
    return threshold_;
  }

 private:
  struct pending_visit {
    node_id id;
    std::uint32_t depth;
  };
  struct slot {
    const span* label = nullptr;  // null while the slot is free
    std::chrono::nanoseconds start{};
    node_ref parent;          // while free, its id links the free list
    std::uint32_t order = 0;  // creation order: breaks ties between equal start times
    std::uint32_t serial = 0;

    [[nodiscard]] bool live() const noexcept { return label != nullptr; }
  };

  /// The children of every node, gathered by a snapshot: first child and
  /// next sibling by slot, in no particular order.
  struct child_lists {
    std::vector<node_id> first_child;
    std::vector<node_id> next_sibling;
  };

  /// The nodes where threads run code of this tree now (see
  /// thread_context.hpp), without allocating: a process has few threads in
  /// one task at a time, and past the capacity a marker is left out.
  struct running_set {
    std::array<node_id, 32> ids{};
    std::size_t size = 0;
    [[nodiscard]] bool contains(node_id id) const noexcept {
      return std::find(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(size), id) !=
             ids.begin() + static_cast<std::ptrdiff_t>(size);
    }
  };

  template <class LockList>
  [[nodiscard]] running_set running_nodes(LockList lock_list) const {
    running_set set;
    thread_list::instance().for_each_running(this, incarnation_, lock_list, [&](node_ref n) {
      if (contains(n) && set.size < set.ids.size()) set.ids[set.size++] = n.id;
    });
    return set;
  }

  /// Trees are recycled, never freed (see above).
  using pool = recycling_pool<tree_state>;
  friend pool;  // links the trees it holds through recycled_next

 public:
  /// Arena memory per node; the name stays in the instrumented awaitable.
  static constexpr std::size_t bytes_per_node = sizeof(slot);

 private:
  // The detached container and the root, which stay. No more is reserved: a
  // registered task that waits idle costs these two slots, and a tree's
  // arena keeps what it grew to for its pool's next tasks. Neither slot is
  // ever freed, and an incarnation ends with both childless (its last node
  // gone), so they are set up here once; open() only restarts the root.
  tree_state() : slots_(2) {
    slots_[detached_container].label = &root_span_;  // never shown: live, with a name
    slots_[root_node].label = &root_span_;
  }
  ~tree_state() = delete;  // recycled, never freed

  // Out of line and cold: the pool has trees in the steady state, and the
  // constructor inlined took registers that every registration saved.
  [[gnu::noinline, gnu::cold]] static tree_state* make_new() { return new tree_state; }

  /// Starts an incarnation: a fresh tree whose only node is the root.
  void open(span&& root, const config& cfg, std::chrono::nanoseconds start) {
    root_span_ = std::move(root).long_running();
    slots_[root_node].start = start;
    clock_ = cfg.clock;
    threshold_ = cfg.long_running_threshold;
    verbose_ = cfg.verbose;
    closed_ = false;
    next_order_ = 1;
    refs_.store(1, std::memory_order_relaxed);
  }

  /// Ends the incarnation: every position naming it is refused from now on.
  void retire() noexcept {
    ++incarnation_;
    closed_ = true;
    slots_.erase(slots_.begin() + 2, slots_.end());  // shrinks only: no growing path inlined
    free_head_ = no_node;
    instrumented_nodes_ = 0;
    // The root's span stays until the next open() replaces it: resetting it
    // here cost every registration 14 instructions, and it holds memory only
    // when the root's name outgrew the span's own buffer or it waits for a
    // key.
  }

  node_id allocate() {
    if (free_head_ != no_node) {
      const node_id id = free_head_;
      free_head_ = slots_[id].parent.id;
      return id;
    }
    slots_.emplace_back();
    return static_cast<node_id>(slots_.size() - 1);
  }

  void free_slot(node_id id) noexcept {
    slot& s = slots_[id];
    s.label = nullptr;
    ++s.serial;
    s.parent.id = free_head_;
    free_head_ = id;
  }

  /// The slot of the parent of `id`: the detached container once the parent
  /// is gone; no_node for the root and the container.
  [[nodiscard]] node_id parent_id(node_id id) const noexcept {
    const node_ref p = slots_[id].parent;
    if (p.id == no_node) return no_node;
    return contains(p) ? p.id : detached_container;
  }

  /// The children of every live node, for one snapshot. Kept by the thread
  /// between snapshots: a registry's snapshot copies thousands of trees.
  [[nodiscard]] const child_lists& gather_children() const {
    thread_local child_lists lists;
    lists.first_child.assign(slots_.size(), no_node);
    lists.next_sibling.resize(slots_.size());
    for (node_id id = root_node + 1; id < slots_.size(); ++id) {
      if (!slots_[id].live()) continue;
      const node_id p = parent_id(id);
      lists.next_sibling[id] = std::exchange(lists.first_child[p], id);
    }
    return lists;
  }

  /// Pushes the children of `id` onto `stack` so that they pop in start order.
  void push_children(const child_lists& lists, node_id id, std::uint32_t depth,
                     std::vector<pending_visit>& stack) const {
    const std::size_t first = stack.size();
    for (node_id c = lists.first_child[id]; c != no_node; c = lists.next_sibling[c]) {
      stack.push_back({c, depth});
    }
    std::sort(stack.begin() + static_cast<std::ptrdiff_t>(first), stack.end(),
              [this](pending_visit a, pending_visit b) {
                const slot& x = slots_[a.id];
                const slot& y = slots_[b.id];
                return x.start != y.start ? x.start > y.start : x.order > y.order;
              });
  }

  /// Whether code of the task runs at `id` now; the root is never marked.
  [[nodiscard]] static bool shows_current(node_id id, const running_set& running) noexcept {
    return id != root_node && running.contains(id);
  }

  [[nodiscard]] bool starts_before(node_id a, node_id b) const noexcept {
    const slot& x = slots_[a];
    const slot& y = slots_[b];
    return x.start != y.start ? x.start < y.start : x.order < y.order;
  }

  /// The child of `parent` that starts next after `after` (the first child
  /// when `after` is no_node); no_node when there is none. Scans every slot:
  /// only the crash handlers' walk, which may not allocate, asks.
  [[nodiscard]] node_id next_child_by_start(node_id parent, node_id after) const noexcept {
    node_id best = no_node;
    for (node_id c = root_node + 1; c < slots_.size(); ++c) {
      if (slots_[c].live() && parent_id(c) == parent &&
          (after == no_node || starts_before(after, c)) &&
          (best == no_node || starts_before(c, best))) {
        best = c;
      }
    }
    return best;
  }

  /// Pre-order without a stack (so without allocating): down to the first
  /// child, else on past the subtree. False when `visit` stopped the walk.
  template <class Visit>
  bool walk_subtree(node_id top, std::chrono::nanoseconds now, const running_set& running,
                    Visit& visit) const {
    std::uint32_t depth = 0;
    for (node_id n = top; n != no_node;) {
      const slot& s = slots_[n];
      if (!visit(node_view{n, *s.label, now - s.start, depth, shows_current(n, running),
                           parent_id(n) == detached_container})) {
        return false;
      }
      if (const node_id child = next_child_by_start(n, no_node); child != no_node) {
        n = child;
        ++depth;
      } else {
        n = next_beyond(n, top, depth);
      }
    }
    return true;
  }

  /// The next sibling of `n` or of its nearest ancestor below `top` that has
  /// one, with `depth` updated; no_node when `top`'s subtree is done.
  [[nodiscard]] node_id next_beyond(node_id n, node_id top, std::uint32_t& depth) const noexcept {
    for (; n != top; n = parent_id(n), --depth) {
      if (const node_id sibling = next_child_by_start(parent_id(n), n); sibling != no_node) {
        return sibling;
      }
    }
    return no_node;
  }

  // The small fields first, packed behind the lock: an idle registered
  // task's tree is 136 bytes (a 144-byte heap chunk).
  mutable spin_mutex mutex_;
  bool verbose_ = false;
  bool closed_ = false;
  std::atomic<std::uint32_t> refs_{1};  // the root's
  std::uint32_t incarnation_ = 0;
  node_id free_head_ = no_node;
  std::uint32_t instrumented_nodes_ = 0;
  std::vector<slot> slots_;
  // While the tree is open, the creation order of its next node; while it
  // waits in the pool, the pool's link, which the pool alone reads. One word
  // for both keeps an idle task's tree at 136 bytes.
  union {
    std::uint64_t next_order_ = 1;
    tree_state* recycled_next;
  };
  span root_span_{""};
  clock_function clock_ = &coarse_now;
  std::chrono::nanoseconds threshold_{};
};

using tree_ref = counted_ref<tree_state>;

}  // namespace await_tree::detail
