// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>

namespace await_tree::detail {

/// A counted reference to a `T` that counts its own references through
/// `acquire()` and `release()` (the last release deletes it).
template <class T>
class counted_ref {
 public:
  counted_ref() noexcept = default;
  /// Takes over a reference the caller holds (the one `T::create` returns).
  static counted_ref adopt(T* p) noexcept { return counted_ref(p); }
  /// Takes a new reference.
  static counted_ref share(T* p) noexcept {
    if (p != nullptr) p->acquire();
    return counted_ref(p);
  }

  counted_ref(const counted_ref& other) noexcept : counted_ref(share(other.p_)) {}
  counted_ref(counted_ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  counted_ref& operator=(counted_ref other) noexcept {
    std::swap(p_, other.p_);
    return *this;
  }
  ~counted_ref() {
    if (p_ != nullptr) p_->release();
  }

  [[nodiscard]] T* get() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  friend bool operator==(const counted_ref& a, const counted_ref& b) noexcept {
    return a.p_ == b.p_;
  }

 private:
  explicit counted_ref(T* p) noexcept : p_(p) {}
  T* p_ = nullptr;
};

}  // namespace await_tree::detail
