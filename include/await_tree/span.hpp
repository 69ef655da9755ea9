// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/wait_target.hpp>

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace await_tree {

class resource;
class span;

namespace detail {
/// What a live node's span waits for, copied for a snapshot.
[[nodiscard]] std::optional<wait_edge> describe_wait(const span& s);
/// The span without what it waits for: a snapshot's copy, which must not
/// refer to a resource that may be gone by the time the copy is read.
[[nodiscard]] span label_only(const span& s);
}  // namespace detail

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
        long_running_(other.long_running_),
        owns_wait_(other.owns_wait_),
        wait_(other.owns_wait_ ? other.owned_wait()->clone() : other.wait_) {}
  span(span&& other) noexcept
      : data_(std::exchange(other.data_, "")),
        size_(std::exchange(other.size_, 0)),
        owned_(std::exchange(other.owned_, false)),
        verbose_(other.verbose_),
        long_running_(other.long_running_),
        owns_wait_(std::exchange(other.owns_wait_, false)),
        wait_(std::exchange(other.wait_, nullptr)) {}
  span& operator=(span other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(owned_, other.owned_);
    verbose_ = other.verbose_;
    long_running_ = other.long_running_;
    std::swap(wait_, other.wait_);
    std::swap(owns_wait_, other.owns_wait_);
    return *this;
  }
  ~span() {
    if (owned_) delete[] data_;
    if (owns_wait_) delete wait_;
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

  /// This await waits for the task registered under `key`: its output, its
  /// consumption, its completion. The key must have the type it was
  /// registered with; it is copied. Defined in wait_edge.hpp (included by
  /// registry.hpp and the umbrella header).
  template <class Key>
  [[nodiscard]] span waits_for(Key key) &&;
  template <class Key>
  [[nodiscard]] span waits_for(Key key) const&;

  /// This await waits for whoever holds `r`. Only a reference is kept: `r`
  /// must outlive the await. Defined in resource.hpp.
  [[nodiscard]] span waits_for(const resource& r) &&;
  [[nodiscard]] span waits_for(const resource& r) const&;

  [[nodiscard]] std::string_view name() const noexcept { return {data_, size_}; }
  [[nodiscard]] bool is_verbose() const noexcept { return verbose_; }
  [[nodiscard]] bool is_long_running() const noexcept { return long_running_; }

  friend bool operator==(const span& a, const span& b) noexcept {
    return a.name() == b.name() && a.verbose_ == b.verbose_ && a.long_running_ == b.long_running_;
  }

 private:
  friend std::optional<wait_edge> detail::describe_wait(const span& s);
  friend span detail::label_only(const span& s);

  struct label_only_tag {};
  span(const span& other, label_only_tag)
      : data_(other.owned_ ? copy(other.name()) : other.data_),
        size_(other.size_),
        owned_(other.owned_),
        verbose_(other.verbose_),
        long_running_(other.long_running_) {}

  void set_wait(const detail::wait_target* target, bool owned) noexcept {
    if (owns_wait_) delete wait_;
    wait_ = target;
    owns_wait_ = owned;
  }
  [[nodiscard]] const detail::owned_wait_target* owned_wait() const noexcept {
    return static_cast<const detail::owned_wait_target*>(wait_);
  }

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
  // What the await waits for: a resource (referenced) or a key (owned). The
  // flag sits with the others: the span stays 32 bytes, cheaper to move.
  bool owns_wait_ = false;
  const detail::wait_target* wait_ = nullptr;
};

namespace detail {
inline span label_only(const span& s) { return {s, span::label_only_tag{}}; }
}  // namespace detail

}  // namespace await_tree
