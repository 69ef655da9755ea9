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
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <utility>
#include <vector>

namespace await_tree::detail {

class registry_state;

/// One registration: a task's key and tree, made by `registry_state::enter`
/// and owned by the task's root until it gives it to `leave`.
struct registry_entry {
  any_key key;
  tree_state* tree;
  registry_state* registry;  // held for the root, see registry_state
  std::uint64_t order;       // the registration's time, see registry_state::enter
  std::uint32_t shard;       // the shard that lists it
  std::uint32_t slot;        // its place in that shard's list; `unlisted` once cleared

  static constexpr std::uint32_t unlisted = ~std::uint32_t{0};
};

/// The live registrations, in shards on cache lines of their own. A thread
/// registers its tasks in a shard of its own (threads are dealt the shards in
/// turn), so that threads registering at once share no lock and no cache
/// line; an entry is removed from the shard it was listed in, by whichever
/// thread ends its task. A shard keeps its entries in a dense list (an entry
/// knows its place), so that registering is an append and ending a task one
/// swap with the last entry: no lookup on either path. The entries come from
/// slabs of the shard's own (node_pool).
///
/// Lookups by key are the rare path and resolve across the shards: of the
/// live entries with equal keys, the newest registration wins. An older task
/// under that key runs on unlisted to lookups and collections, and shows
/// again if it outlives the newer one. Equal keys thus cost nothing to
/// register, however many live tasks share one.
///
/// An entry holds no reference to its tree: a root leaves the registry
/// before it gives up its own reference, so an entry found under its shard's
/// mutex always points to a live tree.
///
/// The state outlives its `registry` handles while roots registered in it
/// live, and roots hold it through their shard: a count per shard, kept under
/// the shard's mutex, not one shared count, so that threads registering tasks
/// at once write no common cache line. The handles hold every shard once; a
/// shard whose count drops to zero closes, and the last shard to close
/// deletes the state.
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

  /// A number no other anonymous task of this registry has, from 1 up. Each
  /// shard deals its own (shard i: i + 1, i + 1 + 16, ...), so that threads
  /// registering anonymous tasks at once write no common cache line.
  [[nodiscard]] std::uint64_t next_anonymous_id() noexcept {
    const std::uint32_t index = this_thread_shard();
    const std::uint64_t n = shards_[index].anonymous_ids.fetch_add(1, std::memory_order_relaxed);
    return n * shard_count + index + 1;
  }

  /// Lists the task of tree `t`, whose root started at `start`, under the
  /// key `make_key()` makes in place (under the shard's mutex: a key too
  /// large for any_key's buffer allocates there, as a snapshot's copy of it
  /// does) in the calling thread's shard. The entry holds this state for its
  /// root, which must give it to `leave` once. Nothing changes when this
  /// throws.
  ///
  /// Its order is that start, by the registry's clock, so that the newest
  /// of equal keys is the one registered last whichever threads registered
  /// them, to within the clock's resolution (the default clock's tick is 1
  /// to 4 ms; `steady_now` makes it exact); one nanosecond past the shard's
  /// last, so that a thread's own registrations never tie. Inlined into its
  /// one caller, which is out of line: a call less per registration (18
  /// instructions).
  template <class MakeKey>
  [[nodiscard, gnu::always_inline]] registry_entry& enter(MakeKey& make_key, tree_state* t,
                                                          std::chrono::nanoseconds start) {
    const std::uint32_t index = this_thread_shard();
    shard& s = shards_[index];
    const auto now = static_cast<std::uint64_t>(std::max<std::int64_t>(start.count(), 0));
    const std::lock_guard lock(s.mutex);
    void* block = s.blocks.take();
    registry_entry* e = nullptr;
    // Every member given a value known here: with a constant zero among
    // them, GCC cleared the whole entry before writing it (6 instructions).
    const std::uint64_t order = std::max(now, s.last_order + 1);
    try {
      const auto slot = static_cast<std::uint32_t>(s.entries.size());
      e = ::new (block) registry_entry{make_key(), t, this, order, index, slot};
      s.entries.push_back(e);
    } catch (...) {
      if (e != nullptr) e->~registry_entry();
      s.blocks.give_back(block);
      throw;
    }
    s.last_order = order;
    ++s.holders;
    return *e;
  }

  /// A task's root has ended: its entry leaves the registry, then its tree
  /// closes and loses the root's reference (in that order: the entry's
  /// pointer stays valid while the entry is listed). One call for both.
  [[gnu::noinline]] static void end_task(registry_entry& e) noexcept {
    tree_state* t = e.tree;
    e.registry->leave(e);
    t->close_and_release();
  }

 private:
  /// Unlists `e` (unless a clear() did), frees it and gives up its root's
  /// hold: this state may be gone when it returns. The tree is left to the
  /// caller.
  [[gnu::always_inline]] void leave(registry_entry& e) noexcept {
    shard& s = shards_[e.shard];
    bool last = false;
    {
      const std::lock_guard lock(s.mutex);
      if (e.slot != registry_entry::unlisted) {
        registry_entry* moved = s.entries[e.slot] = s.entries.back();
        moved->slot = e.slot;
        s.entries.pop_back();
      }
      e.~registry_entry();
      s.blocks.give_back(&e);
      last = --s.holders == 0;
    }
    if (last) close_shard();
  }

 public:
  void clear() noexcept {
    for (shard& s : shards_) {
      const std::lock_guard lock(s.mutex);
      for (registry_entry* e : s.entries) e->slot = registry_entry::unlisted;
      s.entries.clear();
    }
  }

  /// The tree of the newest task registered under the key `probe` stands
  /// for. Each shard's candidate is taken under its mutex; a tree passed over
  /// is given back after it.
  template <class K>
  [[nodiscard]] std::optional<tree> snapshot(const key_probe<K>& probe) const {
    tree_ref newest;
    std::uint64_t newest_order = 0;
    for (const shard& s : shards_) {
      tree_ref candidate;
      std::uint64_t candidate_order = 0;
      {
        const std::lock_guard lock(s.mutex);
        for (const registry_entry* e : s.entries) {
          if (e->order > candidate_order && e->key.matches(probe)) {
            candidate = tree_ref::share(e->tree);
            candidate_order = e->order;
          }
        }
      }
      if (candidate_order > newest_order) {
        newest = std::move(candidate);
        newest_order = candidate_order;
      }
    }
    if (!newest) return std::nullopt;
    return snapshot_if_open(*newest.get());
  }

  /// Snapshots the newest task of every key that satisfies `wanted`. Trees
  /// are copied one at a time, after the shard's mutex is released:
  /// registration never waits for a snapshot, and tasks wait only for their
  /// own tree's copy.
  template <class Predicate>
  [[nodiscard]] std::vector<std::pair<any_key, tree>> snapshot_all(Predicate wanted) const {
    // The thread's, kept between snapshots as the tree walk's stack is (one
    // allocation per snapshot less); emptied on the way out, so that it keeps
    // no tree alive.
    thread_local std::vector<found_entry> found;
    const scope_exit empty_found{[]() noexcept { found.clear(); }};
    for (const shard& s : shards_) {
      const std::lock_guard lock(s.mutex);
      // The trees are scattered over the heap (the entries lie in slabs):
      // they are fetched at once, rather than one cache miss after another.
      for (const registry_entry* e : s.entries) __builtin_prefetch(e->tree, 1);
      for (const registry_entry* e : s.entries) {
        if (wanted(e->key)) found.push_back({e->key, tree_ref::share(e->tree), e->order});
      }
    }
    drop_shadowed(found);
    std::vector<std::pair<any_key, tree>> trees;
    trees.reserve(found.size());
    // All the trees' nodes in one storage (see snapshot_storage), sized
    // after the last snapshot's so that it rarely grows.
    const std::size_t last = last_snapshot_nodes_.load(std::memory_order_relaxed);
    const auto storage = snapshot_storage_.take(std::max(found.size(), last + last / 8));
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (i + prefetch_distance < found.size()) {
        __builtin_prefetch(found[i + prefetch_distance].tree.get(), 1);
      }
      if (!found[i].tree) continue;  // shadowed
      if (std::optional<tree> snapshot = snapshot_if_open(*found[i].tree.get(), storage)) {
        trees.emplace_back(std::move(found[i].key), std::move(*snapshot));
      }
    }
    last_snapshot_nodes_.store(storage->size(), std::memory_order_relaxed);
    return trees;
  }

  /// For dumps made while the program dies: calls `visit(key, tree_state&)`
  /// for each listed entry (an older task under a key shows too: telling it
  /// apart would take memory or time a dying process may not have), holding
  /// its shard's mutex, and `skip()` for each shard whose mutex stays taken
  /// (the dying thread may hold it). Allocates nothing; waits at most
  /// briefly for each mutex.
  template <class Visit, class Skip>
  void try_visit_all(Visit visit, Skip skip) const {
    for (const shard& s : shards_) {
      const auto lock = try_lock_briefly(s.mutex);
      if (!lock.owns_lock()) {
        skip();
        continue;
      }
      for (const registry_entry* e : s.entries) visit(e->key, *e->tree);
    }
  }

 private:
  /// A spin_mutex, as a tree's: a shard's sections are an append, a swap, a
  /// lookup's scan or a snapshot's copy of the shard's keys (waiters yield).
  struct alignas(64) shard {
    mutable spin_mutex mutex;
    std::vector<registry_entry*> entries;
    node_pool blocks{sizeof(registry_entry)};
    std::uint64_t last_order = 0;                 // of the newest entry made here
    std::size_t holders = 1;                      // the roots registered here, plus the handles
    std::atomic<std::uint64_t> anonymous_ids{0};  // dealt here so far
  };

  /// An entry as a snapshot found it; its tree is dropped when a newer
  /// registration of its key was found too.
  struct found_entry {
    any_key key;
    tree_ref tree;
    std::uint64_t order;
  };

  explicit registry_state(const config& cfg) : config_(resolved(cfg)) { enroll_for_fork(); }
  ~registry_state() { withdraw_from_fork(); }

  /// Keeps, of the entries in `found` with equal keys, the newest's tree
  /// only: a table of the first entry seen of each key (hash_slots), kept by
  /// the thread between snapshots.
  static void drop_shadowed(std::vector<found_entry>& found) {
    thread_local hash_slots<found_entry> newest_of_key;
    const scope_exit empty_table{[]() noexcept { newest_of_key.clear(); }};
    for (found_entry& f : found) {
      newest_of_key.make_room();
      const std::size_t hash = f.key.hash();
      const std::size_t at = newest_of_key.find_or_empty(
          hash, [&f](const found_entry* seen) { return seen->key == f.key; });
      found_entry* seen = newest_of_key.at(at);
      if (seen == nullptr) {
        newest_of_key.insert_at(at, hash, &f);
      } else if (seen->order < f.order) {
        seen->tree = {};
        newest_of_key.at(at) = &f;
      } else {
        f.tree = {};
      }
    }
  }

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
      for (const registry_entry* e : s.entries) {
        trees_locked_for_fork_.push_back(e->tree->lock().release());
      }
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
    bool last = false;
    {
      const std::lock_guard lock(s.mutex);
      last = --s.holders == 0;
    }
    if (last) close_shard();
  }

  /// A shard has no holder left; the last shard to close deletes the state.
  void close_shard() noexcept {
    if (open_shards_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// The calling thread's shard: threads are dealt the shards in turn, on
  /// their first registration in any registry. Read in place with one
  /// initial-exec access (check_tls.sh): its callers are out of line and no
  /// coroutine body, so no suspension can keep another thread's address
  /// (LLVM #47179, see thread_context.hpp). Inlined: a call cost 6
  /// instructions a registration.
  [[gnu::always_inline]] static std::uint32_t this_thread_shard() noexcept {
    [[gnu::tls_model("initial-exec")]] constinit static thread_local std::uint32_t shard_plus_one =
        0;
    if (shard_plus_one == 0) [[unlikely]]
      shard_plus_one = deal_shard();
    return shard_plus_one - 1;
  }

  [[gnu::noinline, gnu::cold]] static std::uint32_t deal_shard() noexcept {
    static std::atomic<std::uint32_t> threads_dealt{0};
    return threads_dealt.fetch_add(1, std::memory_order_relaxed) % shard_count + 1;
  }

  /// How many trees ahead of the one being copied a snapshot loads the next.
  static constexpr std::size_t prefetch_distance = 4;
  static constexpr std::uint32_t shard_count = 16;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> open_shards_{shard_count};
  config config_;  // resolved: its clock is never null
  mutable snapshot_storage snapshot_storage_;
  mutable std::atomic<std::size_t> last_snapshot_nodes_{0};  // how many snapshot_all copied
  std::vector<spin_mutex*> trees_locked_for_fork_;           // only from before to after a fork
};

}  // namespace await_tree::detail
