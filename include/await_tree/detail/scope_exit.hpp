// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>

namespace await_tree::detail {

/// Runs a function when the scope is left, normally or by an exception.
template <class F>
class scope_exit {
 public:
  explicit scope_exit(F f) noexcept : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  ~scope_exit() { f_(); }

 private:
  F f_;
};

}  // namespace await_tree::detail
