// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace await_tree::detail {

/// Blocks of one size, kept on a free list once given back, so that a map
/// whose entries come and go stops allocating once it has held its peak
/// number of entries. Not synchronised: its owner's lock guards it. Blocks go
/// back to the heap when the pool is destroyed.
class node_pool {
 public:
  node_pool() = default;
  node_pool(const node_pool&) = delete;
  node_pool& operator=(const node_pool&) = delete;
  ~node_pool() {
    while (free_ != nullptr) ::operator delete(std::exchange(free_, free_->next));
  }

  /// Whether requests for `size` bytes come from this pool: those of the size
  /// the first request asked for.
  [[nodiscard]] bool serves(std::size_t size) noexcept {
    if (served_size_ == 0) {
      served_size_ = size;
      block_size_ = size < sizeof(free_block) ? sizeof(free_block) : size;
    }
    return size == served_size_;
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

  std::size_t served_size_ = 0;
  std::size_t block_size_ = 0;
  free_block* free_ = nullptr;
};

/// A standard allocator over a node_pool: single objects of the pool's size
/// come from it; anything else (a map's bucket array) from the heap.
template <class T>
class pooled_allocator {
 public:
  using value_type = T;

  explicit pooled_allocator(node_pool& pool) noexcept : pool_(&pool) {}
  template <class U>
  pooled_allocator(
      const pooled_allocator<U>& other) noexcept  // NOLINT(google-explicit-constructor)
      : pool_(other.pool()) {}

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n == 1 && alignof(T) <= alignof(std::max_align_t) && pool_->serves(sizeof(T))) {
      return static_cast<T*>(pool_->take());
    }
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n == 1 && alignof(T) <= alignof(std::max_align_t) && pool_->serves(sizeof(T))) {
      pool_->give_back(p);
    } else {
      std::allocator<T>{}.deallocate(p, n);
    }
  }

  [[nodiscard]] node_pool* pool() const noexcept { return pool_; }
  friend bool operator==(const pooled_allocator& a, const pooled_allocator& b) noexcept {
    return a.pool_ == b.pool_;
  }

 private:
  node_pool* pool_;
};

}  // namespace await_tree::detail
