// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/spin_mutex.hpp>
#include <await_tree/tree.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace await_tree::detail {

/// The node storage of a registry's snapshots (all the trees of one snapshot
/// share one, see tree's private constructor), recycled: when the last tree
/// of a snapshot is dropped, the memory of its storage is kept for the next
/// snapshot. Freed and allocated again each time, it had the allocator hand
/// its pages back to the system and fault them in again, which was half the
/// time of a snapshot of 10,000 tasks. The cost: the registry keeps the
/// memory of its largest snapshot's nodes (tree::node each) while it lives.
///
/// Never waits: when another thread holds the spare storage (or held it at a
/// fork), a snapshot allocates its own, and a dropped one is freed.
class snapshot_storage {
 public:
  /// An empty storage with room for `nodes` nodes.
  [[nodiscard]] std::shared_ptr<tree::node_storage> take(std::size_t nodes) {
    auto storage = std::make_unique<tree::node_storage>();
    if (const std::unique_lock lock(spare_->mutex, std::try_to_lock); lock.owns_lock()) {
      storage->swap(spare_->nodes);
    }
    storage->reserve(nodes);
    return {storage.release(), recycle{spare_}};
  }

 private:
  struct spare {
    spin_mutex mutex;
    tree::node_storage nodes;  // empty, its capacity kept
  };

  /// The deleter of a snapshot's storage: keeps the larger of its memory and
  /// the spare one's.
  struct recycle {
    std::shared_ptr<spare> to;  // outlives the registry while its trees do

    void operator()(tree::node_storage* storage) const noexcept {
      storage->clear();
      if (const std::unique_lock lock(to->mutex, std::try_to_lock); lock.owns_lock()) {
        if (storage->capacity() > to->nodes.capacity()) storage->swap(to->nodes);
      }
      delete storage;
    }
  };

  std::shared_ptr<spare> spare_ = std::make_shared<spare>();
};

}  // namespace await_tree::detail
