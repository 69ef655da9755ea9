// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>

namespace await_tree::detail {

/// Blocks of one size, kept on a free list once given back, so that entries
/// that come and go stop allocating once their peak number has been held.
/// Not synchronised: its owner's lock guards it. Blocks go back to the heap
/// when the pool is destroyed.
class node_pool {
 public:
  explicit node_pool(std::size_t block_size) noexcept
      : block_size_(std::max(block_size, sizeof(free_block))) {}
  node_pool(const node_pool&) = delete;
  node_pool& operator=(const node_pool&) = delete;
  ~node_pool() {
    while (free_ != nullptr) ::operator delete(std::exchange(free_, free_->next));
  }

  [[nodiscard]] void* take() {
    if (free_ == nullptr) return ::operator new(block_size_);
    return std::exchange(free_, free_->next);
  }

  void give_back(void* block) noexcept { free_ = ::new (block) free_block{free_}; }

 private:
  struct free_block {
    free_block* next;
  };

  std::size_t block_size_;
  free_block* free_ = nullptr;
};

}  // namespace await_tree::detail
