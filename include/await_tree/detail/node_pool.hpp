// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace await_tree::detail {

/// Blocks of one size, cut from slabs of `blocks_per_slab` and kept on a free
/// list once given back, so that entries that come and go stop allocating
/// once their peak number has been held, and each costs its size alone (no
/// heap chunk's header and rounding). Not synchronised: its owner's lock
/// guards it. The slabs go back to the heap when the pool is destroyed.
class node_pool {
 public:
  /// `block_size` must keep the blocks of a slab aligned as they need (a
  /// multiple of their alignment, which is at most the heap's).
  explicit node_pool(std::size_t block_size) noexcept
      : block_size_(std::max(block_size, sizeof(free_block))) {}
  node_pool(const node_pool&) = delete;
  node_pool& operator=(const node_pool&) = delete;

  [[nodiscard]] void* take() {
    if (free_ == nullptr) add_slab();
    return std::exchange(free_, free_->next);
  }

  void give_back(void* block) noexcept { free_ = ::new (block) free_block{free_}; }

 private:
  static constexpr std::size_t blocks_per_slab = 32;

  struct free_block {
    free_block* next;
  };

  /// Out of line: inlined, it made every take() slower (25 instructions a
  /// registration, GCC 12), for what happens once in 32 takes at most.
  [[gnu::noinline, gnu::cold]] void add_slab() {
    auto slab = std::make_unique<std::byte[]>(block_size_ * blocks_per_slab);
    std::byte* blocks = slab.get();
    slabs_.push_back(std::move(slab));
    for (std::size_t i = blocks_per_slab; i-- > 0;) give_back(blocks + i * block_size_);
  }

  std::size_t block_size_;
  free_block* free_ = nullptr;
  std::vector<std::unique_ptr<std::byte[]>> slabs_;
};

}  // namespace await_tree::detail
