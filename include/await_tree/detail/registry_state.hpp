// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/config.hpp>
#include <await_tree/detail/fork_guard.hpp>
#include <await_tree/detail/hash_slots.hpp>
#include <await_tree/detail/node_pool.hpp>
#include <await_tree/detail/scope_exit.hpp>
#include <await_tree/detail/snapshot_storage.hpp>
#include <await_tree/detail/spin_mutex.hpp>
#include <await_tree/detail/tree_snapshot.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <utility>
#include <vector>

namespace await_tree::detail {

/// One registration: a task's key and tree, made by `registry_state::enter`
/// and owned by the task's root until it gives it to `leave`.
struct registry_entry {
  any_key key;
  tree_state* tree;
};

/// The map from keys to live trees, split into shards, each on a cache line of
/// its own, so that tasks registering on different threads rarely meet. A
/// shard finds the entry of each key in a table of pointers (`hash_slots`),
/// and takes the entries' memory from a pool of its own.
///
/// An entry holds no reference to its tree: a root leaves the registry
/// before it gives up its own reference, so an entry found under its shard's
/// mutex always points to a live tree.
///
/// The state outlives its `registry` handles while roots registered in it
/// live, and roots hold it through their shard: a count per shard, not one
/// shared count, so that threads registering tasks at once write no common
/// cache line. The handles hold every shard once; a shard whose count drops
/// to zero closes, and the last shard to close deletes the state.
///
/// Around fork(), every shard and every listed tree is locked (see
/// fork_guard.hpp), so that a dump in the child never waits for a lock held
/// by a thread the child does not have. Shards come before trees, as in a
/// snapshot: no holder of a tree's lock waits for a shard.
class registry_state final : public fork_participant {
 public:
  static registry_state* create(const config& cfg) { return new registry_state(cfg); }

  /// The registry handles are gone: no task registers here any more.
  static void release_handles(registry_state* self) noexcept {
    for (shard& s : self->shards_) self->release_hold(s);
  }

  [[nodiscard]] const config& settings() const noexcept { return config_; }
  [[nodiscard]] std::uint64_t next_anonymous_id() noexcept {
    return anonymous_ids_.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  /// Registers the task of tree `t` under `key`, replacing the entry of an
  /// earlier task with that key (whose root then leaves a registry that no
  /// longer lists it). The entry holds this state for its root, which must
  /// give it to `leave` once. Nothing changes when this throws.
  [[nodiscard, gnu::noinline]] registry_entry& enter(any_key&& key, tree_state* t) {
    shard& s = shard_of(key.hash());
    const std::lock_guard lock(s.mutex);
    s.entries.make_room();
    auto* e = ::new (s.blocks.take()) registry_entry{std::move(key), t};
    const std::size_t hash = e->key.hash();
    const std::size_t at = s.entries.find_or_empty(
        hash, [e](const registry_entry* other) { return other->key == e->key; });
    if (s.entries.at(at) == nullptr) {
      s.entries.insert_at(at, hash, e);
    } else {
      s.entries.at(at) = e;  // replaces the earlier task's entry
    }
    s.holders.fetch_add(1, std::memory_order_relaxed);
    return *e;
  }

  /// Unlists `e` if no later registration replaced it, frees it and gives up
  /// its root's hold: this state may be gone when it returns. The tree is
  /// left to the caller.
  [[gnu::noinline]] void leave(registry_entry& e) noexcept {
    shard& s = shard_of(e.key.hash());
    {
      const std::lock_guard lock(s.mutex);
      const std::size_t at =
          s.entries.find(e.key.hash(), [&e](const registry_entry* listed) { return listed == &e; });
      if (at != s.entries.npos) s.entries.erase(at);
      e.~registry_entry();
      s.blocks.give_back(&e);
    }
    release_hold(s);
  }

  void clear() noexcept {
    for (shard& s : shards_) {
      const std::lock_guard lock(s.mutex);
      s.entries.clear();
    }
  }

  /// The tree of the task registered under the key `probe` stands for.
  template <class K>
  [[nodiscard]] std::optional<tree> snapshot(const key_probe<K>& probe) const {
    tree_ref t;
    {
      const shard& s = shards_[shard_index(probe.hash)];
      const std::lock_guard lock(s.mutex);
      const std::size_t at = s.entries.find(
          probe.hash, [&probe](const registry_entry* e) { return e->key.matches(probe); });
      if (at == s.entries.npos) return std::nullopt;
      t = tree_ref::share(s.entries.at(at)->tree);
    }
    return snapshot_if_open(*t.get());
  }

  /// Snapshots every tree whose key satisfies `wanted`. Trees are copied one
  /// at a time, after the shard's mutex is released: registration never waits
  /// for a snapshot, and tasks wait only for their own tree's copy.
  template <class Predicate>
  [[nodiscard]] std::vector<std::pair<any_key, tree>> snapshot_all(Predicate wanted) const {
    // The thread's, kept between snapshots as the tree walk's stack is (one
    // allocation per snapshot less); emptied on the way out, so that it keeps
    // no tree alive.
    thread_local std::vector<std::pair<any_key, tree_ref>> found;
    const scope_exit empty_found{[]() noexcept { found.clear(); }};
    for (const shard& s : shards_) {
      const std::lock_guard lock(s.mutex);
      // Entries and trees are scattered over the heap: they are fetched at
      // once, rather than one cache miss after another.
      s.entries.for_each([](const registry_entry* e) { __builtin_prefetch(e); });
      s.entries.for_each([](const registry_entry* e) { __builtin_prefetch(e->tree, 1); });
      s.entries.for_each([&](const registry_entry* e) {
        if (wanted(e->key)) found.emplace_back(e->key, tree_ref::share(e->tree));
      });
    }
    std::vector<std::pair<any_key, tree>> trees;
    trees.reserve(found.size());
    // All the trees' nodes in one storage (see snapshot_storage), sized
    // after the last snapshot's so that it rarely grows.
    const std::size_t last = last_snapshot_nodes_.load(std::memory_order_relaxed);
    const auto storage = snapshot_storage_.take(std::max(found.size(), last + last / 8));
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (i + prefetch_distance < found.size()) {
        __builtin_prefetch(found[i + prefetch_distance].second.get(), 1);
      }
      if (std::optional<tree> snapshot = snapshot_if_open(*found[i].second.get(), storage)) {
        trees.emplace_back(std::move(found[i].first), std::move(*snapshot));
      }
    }
    last_snapshot_nodes_.store(storage->size(), std::memory_order_relaxed);
    return trees;
  }

  /// For dumps made while the program dies: calls `visit(key, tree_state&)`
  /// for each entry, holding its shard's mutex, and `skip()` for each shard
  /// whose mutex stays taken (the dying thread may hold it). Allocates
  /// nothing; waits at most briefly for each mutex.
  template <class Visit, class Skip>
  void try_visit_all(Visit visit, Skip skip) const {
    for (const shard& s : shards_) {
      const auto lock = try_lock_briefly(s.mutex);
      if (!lock.owns_lock()) {
        skip();
        continue;
      }
      s.entries.for_each([&](const registry_entry* e) { visit(e->key, *e->tree); });
    }
  }

 private:
  /// A spin_mutex, as a tree's: a shard's sections are one table operation,
  /// or a snapshot's copy of the shard's keys (waiters yield).
  struct alignas(64) shard {
    mutable spin_mutex mutex;
    hash_slots<registry_entry> entries;  // the entry of each key
    node_pool blocks{sizeof(registry_entry)};
    std::atomic<std::size_t> holders{1};  // the roots registered here, plus the handles
  };

  explicit registry_state(const config& cfg) : config_(cfg) { enroll_for_fork(); }
  ~registry_state() { withdraw_from_fork(); }

  /// Holds the shards' mutexes and the listed trees' until unlock_after_fork.
  /// The entries cannot change meanwhile, and each points to a live tree.
  void lock_for_fork() noexcept override {
    for (shard& s : shards_) s.mutex.lock();
    try {
      trees_locked_for_fork_.reserve(entry_count());
    } catch (const std::bad_alloc&) {
      return;  // the trees stay unlocked: a child's dump may wait for one
    }
    for (shard& s : shards_) {
      s.entries.for_each([this](const registry_entry* e) {
        trees_locked_for_fork_.push_back(e->tree->lock().release());
      });
    }
  }

  void unlock_after_fork(bool /*in_child*/) noexcept override {
    for (spin_mutex* m : trees_locked_for_fork_) m->unlock();
    trees_locked_for_fork_.clear();
    for (shard& s : shards_) s.mutex.unlock();
  }

  /// Requires every shard's mutex.
  [[nodiscard]] std::size_t entry_count() const noexcept {
    std::size_t count = 0;
    for (const shard& s : shards_) count += s.entries.size();
    return count;
  }

  void release_hold(shard& s) noexcept {
    if (s.holders.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        open_shards_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  /// The top bits of the hash times an odd constant: std::hash of an
  /// integer is the integer itself, and the low bits of consecutive ids (two
  /// threads numbering requests from 0 and from 100,000, say) would walk the
  /// shards in step, meeting on the same one at every registration. Not the
  /// constant of hash_slots, whose table would otherwise see only keys
  /// whose top bits are alike.
  [[nodiscard]] static std::size_t shard_index(std::size_t key_hash) noexcept {
    constexpr std::uint64_t mix = 0xbf58476d1ce4e5b9;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(key_hash) * mix) >>
                                    (64 - shard_bits));
  }
  [[nodiscard]] shard& shard_of(std::size_t key_hash) noexcept {
    return shards_[shard_index(key_hash)];
  }

  /// How many trees ahead of the one being copied a snapshot loads the next.
  static constexpr std::size_t prefetch_distance = 4;
  static constexpr int shard_bits = 4;
  static constexpr std::size_t shard_count = std::size_t{1} << shard_bits;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> open_shards_{shard_count};
  config config_;
  std::atomic<std::uint64_t> anonymous_ids_{0};
  mutable snapshot_storage snapshot_storage_;
  mutable std::atomic<std::size_t> last_snapshot_nodes_{0};  // how many snapshot_all copied
  std::vector<spin_mutex*> trees_locked_for_fork_;           // only from before to after a fork
};

}  // namespace await_tree::detail
