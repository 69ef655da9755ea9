// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/wait_target.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
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

/// Makes spans over text that lives as long as the process (the names of
/// call sites, see call_site.hpp), which span's public constructors cannot
/// tell from a dangling pointer.
struct static_text_access {
  static span make(std::string_view text) noexcept;
};

template <class T>
inline constexpr bool always_false = false;
}  // namespace detail

/// A pointer to characters that is not a string literal: the type of a
/// `const char*` variable, or of `cond ? "x" : "y"`.
template <class P>
concept c_string_pointer = std::is_same_v < std::remove_cv_t<P>,
const char* > || std::is_same_v<std::remove_cv_t<P>, char*>;

/// The label of one node of an await-tree: a name plus two display flags.
///
/// A span built from a string literal keeps only a pointer to it: no copy and no
/// allocation, which is what keeps instrumented awaits allocation-free. Any other
/// string is copied, so the caller's buffer may die right after the call: into
/// the span itself up to `inline_capacity` bytes (no allocation), else onto the
/// heap.
class span {
 public:
  static constexpr std::size_t inline_capacity = 48;

  /// Only string literals (and other constant arrays) bind here: `consteval`
  /// rejects a runtime buffer at compile time, because it would dangle.
  template <std::size_t N>
  consteval span(const char (&literal)[N]) noexcept  // NOLINT(google-explicit-constructor)
      : text_{.pointer = literal},
        head_{.size = static_cast<std::uint32_t>(std::char_traits<char>::length(literal))} {}

  /// A pointer may point at a buffer that dies before the node: say so, and
  /// what to write instead (the constructor is never instantiated otherwise).
  template <c_string_pointer P>
  span(P) {  // NOLINT(google-explicit-constructor)
    static_assert(detail::always_false<P>,
                  "await_tree::span: a `const char*` name is rejected, since the node would "
                  "keep the pointer and the buffer may die first. Write a string literal "
                  "(\"read block\"), or wrap the pointer as std::string_view(name) to have the "
                  "name copied (no allocation up to 48 bytes).");
  }

  span(std::string_view name)  // NOLINT(google-explicit-constructor)
      : head_{.size = checked_size(name.size())} {
    copy_from(name);
  }
  span(const std::string& name)  // NOLINT(google-explicit-constructor)
      : span(std::string_view(name)) {}

  span(const span& other) : span(other, label_only_tag{}) {
    head_.owns_wait = other.head_.owns_wait;
    wait_ = other.head_.owns_wait ? other.owned_wait()->clone() : other.wait_;
  }
  span(span&& other) noexcept { take(other); }
  span& operator=(const span& other) { return *this = span(other); }
  span& operator=(span&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  ~span() { release(); }

  // The modifiers of a temporary return it as an rvalue, not a new span, so
  // that `instrument(x, span("read").waits_for(r))` builds one span, not two:
  // use the result within the expression, or move it into a `span` variable
  // (a reference to it would outlive the temporary).

  /// A span recorded only when the registry's `config::verbose` is set.
  [[nodiscard]] span&& verbose() && noexcept {
    head_.verbose = true;
    return std::move(*this);
  }
  [[nodiscard]] span verbose() const& { return span(*this).verbose(); }

  /// A span expected to be pending for a long time: never flagged as stuck.
  [[nodiscard]] span&& long_running() && noexcept {
    head_.long_running = true;
    return std::move(*this);
  }
  [[nodiscard]] span long_running() const& { return span(*this).long_running(); }

  /// This await waits for the task registered under `key`: its output, its
  /// consumption, its completion. The key must have the type it was
  /// registered with; it is copied. Defined in wait_edge.hpp (included by
  /// registry.hpp and the umbrella header).
  template <class Key>
  [[nodiscard]] span&& waits_for(Key key) &&;
  template <class Key>
  [[nodiscard]] span waits_for(Key key) const&;

  /// This await waits for whoever holds `r`. Only a reference is kept: `r`
  /// must outlive the await. Defined in resource.hpp.
  [[nodiscard]] span&& waits_for(const resource& r) &&;
  [[nodiscard]] span waits_for(const resource& r) const&;

  [[nodiscard]] std::string_view name() const noexcept {
    return {head_.where == storage::in_place ? text_.chars : text_.pointer, head_.size};
  }
  [[nodiscard]] bool is_verbose() const noexcept { return head_.verbose; }
  [[nodiscard]] bool is_long_running() const noexcept { return head_.long_running; }

  friend bool operator==(const span& a, const span& b) noexcept {
    return a.name() == b.name() && a.head_.verbose == b.head_.verbose &&
           a.head_.long_running == b.head_.long_running;
  }

 private:
  friend struct detail::static_text_access;
  friend std::optional<wait_edge> detail::describe_wait(const span& s);
  friend span detail::label_only(const span& s);

  // Where the name is: a literal (or other static text) it points at, its own
  // characters, or a heap buffer it owns. Not a std::string: a consteval
  // constructor cannot yield an object pointing into itself, which is what a
  // short std::string does.
  enum class storage : std::uint8_t { borrowed, in_place, heap };
  union text {
    const char* pointer;
    char chars[inline_capacity];
  };

  span() noexcept = default;

  struct label_only_tag {};
  span(const span& other, label_only_tag)
      : head_{.size = other.head_.size,
              .verbose = other.head_.verbose,
              .long_running = other.head_.long_running} {
    if (other.head_.where == storage::borrowed) {
      text_.pointer = other.text_.pointer;
    } else {
      copy_from(other.name());
    }
  }

  void set_wait(const detail::wait_target* target, bool owned) noexcept {
    if (head_.owns_wait) delete wait_;
    wait_ = target;
    head_.owns_wait = owned;
  }
  [[nodiscard]] const detail::owned_wait_target* owned_wait() const noexcept {
    return static_cast<const detail::owned_wait_target*>(wait_);
  }

  static std::uint32_t checked_size(std::size_t size) {
    if (size > std::numeric_limits<std::uint32_t>::max()) {
      throw std::length_error("await_tree::span: a name of 4 GiB or more");
    }
    return static_cast<std::uint32_t>(size);
  }

  /// Copies `name` (of head_.size bytes) into this span's own storage.
  void copy_from(std::string_view name) {
    if (name.size() <= inline_capacity) {
      head_.where = storage::in_place;
      std::copy(name.begin(), name.end(), text_.chars);
      return;
    }
    char* buffer = new char[name.size()];
    std::copy(name.begin(), name.end(), buffer);
    text_.pointer = buffer;
    head_.where = storage::heap;
  }

  // Out of line: inlined, GCC 12 with the sanitizers sees a literal's
  // pointer reach the delete on a path that cannot happen, and warns.
  [[gnu::noinline]] static void free_heap_copy(const char* buffer) noexcept { delete[] buffer; }

  /// Takes `other`'s name and wait; `other` is left an empty, unowning span.
  void take(span& other) noexcept {
    head_ = other.head_;
    wait_ = other.wait_;
    if (head_.where == storage::in_place) {
      text_ = other.text_;
    } else {
      text_.pointer = other.text_.pointer;  // a literal's: the common case, one word
    }
    other.head_ = {};
    other.wait_ = nullptr;
    other.text_.pointer = "";
  }

  /// Frees what the span owns (before it is destroyed or takes another's).
  void release() noexcept {
    if (head_.where == storage::heap) free_heap_copy(text_.pointer);
    if (head_.owns_wait) delete wait_;
  }

  /// The small fields, in one word: a move copies and clears them with a
  /// store each (field by field, GCC moved them byte by byte).
  struct header {
    std::uint32_t size = 0;
    storage where = storage::borrowed;
    bool verbose = false;
    bool long_running = false;
    bool owns_wait = false;  // whether wait_ is a key's, which the span owns
  };

  text text_{.pointer = ""};
  header head_;
  // What the await waits for: a resource (referenced) or a key (owned).
  const detail::wait_target* wait_ = nullptr;
};

inline span detail::label_only(const span& s) { return {s, span::label_only_tag{}}; }

inline span detail::static_text_access::make(std::string_view text) noexcept {
  span s;
  s.text_.pointer = text.data();
  s.head_.size = static_cast<std::uint32_t>(text.size());
  return s;
}

}  // namespace await_tree
