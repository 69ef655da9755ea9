// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/function_name.hpp>
#include <await_tree/span.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <source_location>
#include <string>
#include <string_view>

namespace await_tree {

namespace detail {

/// The names of one call site, made the first time it is named and kept for
/// the life of the process, so that spans may point at them as at literals.
struct call_site_names {
  explicit call_site_names(const std::source_location& where)
      : function(where.function_name()),
        file(where.file_name()),
        line(where.line()),
        column(where.column()) {
    const std::string_view pretty = function;
    text.resize(pretty.size());
    text.resize(short_function_name(pretty, text.data()));
    const std::size_t function_size = text.size();
    const std::string_view path = file;
    text += " (";
    text += path.substr(path.find_last_of("/\\") + 1);  // npos + 1 == 0: no directory
    text += ':';
    text += std::to_string(line);
    text += ')';
    located = static_text_access::make(text);
    function_only = static_text_access::make(std::string_view(text).substr(0, function_size));
  }

  [[nodiscard]] bool names(const std::source_location& where) const noexcept {
    return where.function_name() == function && where.file_name() == file && where.line() == line &&
           where.column() == column;
  }

  // The key: the compiler's strings (one copy per program, or per object
  // file: then a site has one entry per copy) and the position.
  const char* function;
  const char* file;
  std::uint_least32_t line;
  std::uint_least32_t column;
  std::string text;        // `ns::S::read (file.cpp:42)`
  span located{""};        // all of text
  span function_only{""};  // `ns::S::read`
  call_site_names* next = nullptr;
};

/// Every call site named so far, in a hash table that is read without a lock
/// (one atomic load and a comparison for a site named before) and grows by
/// pushing onto a bucket's list with a compare-and-swap. Entries are never
/// freed. No lock, so fork() needs no handler for it.
class call_site_table {
 public:
  [[nodiscard]] static const call_site_names& of(const std::source_location& where) {
    std::atomic<call_site_names*>& head = buckets[bucket_of(where)];
    for (const call_site_names* e = head.load(std::memory_order_acquire); e != nullptr;
         e = e->next) {
      if (e->names(where)) return *e;
    }
    return insert(head, where);
  }

 private:
  static constexpr std::size_t bucket_count = 1024;

  static std::size_t bucket_of(const std::source_location& where) noexcept {
    const auto mix = reinterpret_cast<std::uintptr_t>(where.function_name()) ^
                     (std::uintptr_t{where.line()} * 0x9E3779B1U) ^ where.column();
    return (mix ^ (mix >> 17)) % bucket_count;
  }

  // The first naming of a site: out of line, it shortens and allocates.
  [[gnu::noinline]] static const call_site_names& insert(std::atomic<call_site_names*>& head,
                                                         const std::source_location& where) {
    auto fresh = std::make_unique<call_site_names>(where);
    call_site_names* first = head.load(std::memory_order_acquire);
    for (;;) {
      for (const call_site_names* e = first; e != nullptr; e = e->next) {
        if (e->names(where)) return *e;  // another thread named it first
      }
      fresh->next = first;
      if (head.compare_exchange_weak(first, fresh.get(), std::memory_order_release,
                                     std::memory_order_acquire)) {
        return *fresh.release();
      }
    }
  }

  static constinit inline std::array<std::atomic<call_site_names*>, bucket_count> buckets{};
};

}  // namespace detail

/// Where a call is written, for names that come from the code: the default
/// argument of `instrument(awaitable)` and `coroutine_span()`.
///
/// Captured by a consteval constructor: in a GCC coroutine, a plain
/// `std::source_location::current()` default argument names the compiler's
/// generated function; evaluated at compile time, it names the coroutine.
class call_site {
 public:
  consteval call_site(  // NOLINT(google-explicit-constructor)
      std::source_location where = std::source_location::current()) noexcept
      : where_(where) {}

  [[nodiscard]] const std::source_location& location() const noexcept { return where_; }

  /// `ns::S::read (file.cpp:42)`: the function as a person writes it (see
  /// detail/function_name.hpp), the file without its directory, the line.
  /// The first call for a site shortens the name and allocates, once.
  [[nodiscard]] span name() const { return detail::call_site_table::of(where_).located; }

  /// `ns::S::read`.
  [[nodiscard]] span function_name() const {
    return detail::call_site_table::of(where_).function_only;
  }

 private:
  std::source_location where_;
};

}  // namespace await_tree
