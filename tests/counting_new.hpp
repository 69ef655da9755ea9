// SPDX-License-Identifier: Apache-2.0
#pragma once

// Replaces the global allocation functions to count heap allocations per
// thread. Include it in exactly one translation unit of a binary (replacement
// functions may not be inline), and only in builds without a sanitizer, whose
// runtime owns these functions itself.

#include <cstddef>
#include <cstdlib>
#include <new>

namespace counting_new {
inline thread_local std::size_t allocations = 0;
}  // namespace counting_new

// GCC pairs the replaced operator new with the free() below and warns of a
// mismatch that is not one: both sides are this file's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  ++counting_new::allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
