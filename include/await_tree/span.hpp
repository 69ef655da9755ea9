// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace await_tree {

/// The label of one node of an await-tree: a name plus two display flags.
///
/// A span built from a string literal keeps only a pointer to it: no copy and no
/// allocation, which is what keeps instrumented awaits allocation-free. Any other
/// string is copied, so the caller's buffer may die right after the call.
class span {
 public:
  /// Only string literals (and other constants of static storage duration) bind
  /// here: `consteval` rejects a runtime pointer at compile time, because a
  /// pointer to a stack buffer would dangle. Wrap such a pointer in
  /// `std::string_view` to have it copied instead.
  consteval span(const char* literal) noexcept  // NOLINT(google-explicit-constructor)
      : data_(literal), size_(std::char_traits<char>::length(literal)) {}

  span(std::string_view name)  // NOLINT(google-explicit-constructor)
      : data_(copy(name)), size_(name.size()), owned_(!name.empty()) {}
  span(const std::string& name)  // NOLINT(google-explicit-constructor)
      : span(std::string_view(name)) {}

  span(const span& other)
      : data_(other.owned_ ? copy(other.name()) : other.data_),
        size_(other.size_),
        owned_(other.owned_),
        verbose_(other.verbose_),
        long_running_(other.long_running_) {}
  span(span&& other) noexcept
      : data_(std::exchange(other.data_, "")),
        size_(std::exchange(other.size_, 0)),
        owned_(std::exchange(other.owned_, false)),
        verbose_(other.verbose_),
        long_running_(other.long_running_) {}
  span& operator=(span other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(owned_, other.owned_);
    verbose_ = other.verbose_;
    long_running_ = other.long_running_;
    return *this;
  }
  ~span() {
    if (owned_) delete[] data_;
  }

  /// A span recorded only when the registry's `config::verbose` is set.
  [[nodiscard]] span verbose() && noexcept {
    verbose_ = true;
    return std::move(*this);
  }
  [[nodiscard]] span verbose() const& { return span(*this).verbose(); }

  /// A span expected to be pending for a long time: never flagged as stuck.
  [[nodiscard]] span long_running() && noexcept {
    long_running_ = true;
    return std::move(*this);
  }
  [[nodiscard]] span long_running() const& { return span(*this).long_running(); }

  [[nodiscard]] std::string_view name() const noexcept { return {data_, size_}; }
  [[nodiscard]] bool is_verbose() const noexcept { return verbose_; }
  [[nodiscard]] bool is_long_running() const noexcept { return long_running_; }

  friend bool operator==(const span& a, const span& b) noexcept {
    return a.name() == b.name() && a.verbose_ == b.verbose_ && a.long_running_ == b.long_running_;
  }

 private:
  /// An empty name needs no buffer: it points at a literal and is not owned.
  static const char* copy(std::string_view name) {
    if (name.empty()) return "";
    char* buffer = new char[name.size()];
    std::memcpy(buffer, name.data(), name.size());
    return buffer;
  }

  // Either a literal or a buffer this span owns. Not a std::string: a
  // consteval constructor cannot yield an object pointing into itself, which
  // is what a short std::string does.
  const char* data_;
  std::size_t size_;
  bool owned_ = false;
  bool verbose_ = false;
  bool long_running_ = false;
};

}  // namespace await_tree
