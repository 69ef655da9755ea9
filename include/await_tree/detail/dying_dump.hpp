// SPDX-License-Identifier: Apache-2.0
#pragma once

// The dump written while the process dies (std::terminate, a fatal signal).
// It must not wait for a mutex that the dying thread may hold, and in a
// signal handler it must not allocate: mutexes are only tried (briefly), and
// the text goes through a fixed buffer straight to a file descriptor with
// write(2). POSIX only.

#include <await_tree/any_key.hpp>
#include <await_tree/detail/registry_state.hpp>
#include <await_tree/detail/tree_state.hpp>
#include <await_tree/dump.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/registry.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <unistd.h>

namespace await_tree::detail {

struct registry_access {
  static const registry_state& state(const registry& r) noexcept { return *r.state_; }
};

/// A fixed buffer in front of a file descriptor, written out with write(2)
/// when full and when destroyed. It serves as the `Out` of the text format's
/// functions: fmt fills it through a back_inserter without allocating.
class fd_writer {
 public:
  using value_type = char;

  fd_writer(int fd, char* buffer, std::size_t size) noexcept
      : fd_(fd), buffer_(buffer), size_(size) {}
  fd_writer(const fd_writer&) = delete;
  fd_writer& operator=(const fd_writer&) = delete;
  ~fd_writer() { flush(); }

  void push_back(char c) noexcept {
    if (used_ == size_) flush();
    buffer_[used_++] = c;
    ++written_;
  }
  fd_writer& operator+=(char c) noexcept {
    push_back(c);
    return *this;
  }
  fd_writer& operator+=(std::string_view text) noexcept {
    for (const char c : text) push_back(c);
    return *this;
  }
  void append(std::size_t count, char c) noexcept {
    for (; count > 0; --count) push_back(c);
  }

  /// Bytes given so far, flushed or not.
  [[nodiscard]] std::size_t written() const noexcept { return written_; }

  /// Errors are ignored: a dying process has nowhere else to report them.
  void flush() noexcept {
    std::size_t done = 0;
    while (done < used_) {
      const ssize_t written = ::write(fd_, buffer_ + done, used_ - done);
      if (written > 0) {
        done += static_cast<std::size_t>(written);
      } else if (written == 0 || errno != EINTR) {
        break;
      }
    }
    used_ = 0;
  }

 private:
  int fd_;
  char* buffer_;
  std::size_t size_;
  std::size_t used_ = 0;
  std::size_t written_ = 0;
};

template <class... Integers>
bool write_integer_key(fd_writer& out, const any_key& key) noexcept {
  const auto write = [&out](const auto* value) {
    if (value != nullptr) fmt::format_to(std::back_inserter(out), "{}", *value);
    return value != nullptr;
  };
  return (write(key.template get<Integers>()) || ...);
}

/// Writes `key` as fmt does when that needs no allocation (integers and
/// strings); a placeholder for other types, and anonymous keys lose their
/// number.
inline void write_key_without_allocating(fd_writer& out, const any_key& key) noexcept {
  if (key.is_anonymous()) {
    out += "anonymous";
  } else if (write_integer_key<int, unsigned, long, unsigned long, long long, unsigned long long,
                               short, unsigned short>(out, key)) {
  } else if (const auto* text = key.get<std::string>()) {
    out += *text;
  } else {
    out += "(a key that cannot be printed without allocating)";
  }
}

/// Writes the nodes of `t` as tree::to_string(limits) does, stopping at
/// `max_nodes` or once `out` has taken `max_bytes` (the first node is always
/// written). The nodes left are not counted: the walk that would count them
/// costs as much as writing them.
inline void write_nodes(fd_writer& out, const tree_state& t, const format_limits& limits,
                        std::size_t max_bytes) noexcept {
  bool in_detached = false;
  std::size_t shown = 0;
  bool cut_by_nodes = false;
  bool cut_by_bytes = false;
  t.walk([&](const tree_state::node_view& n) {
    cut_by_nodes = shown == limits.max_nodes;
    cut_by_bytes = shown > 0 && out.written() >= max_bytes;
    if (cut_by_nodes || cut_by_bytes) return false;
    append_text_node(out, n, in_detached, t.long_running_threshold(), limits);
    ++shown;
    return true;
  });
  if (cut_by_nodes) {
    fmt::format_to(std::back_inserter(out), "... more nodes not shown (max_nodes {})\n",
                   limits.max_nodes);
  } else if (cut_by_bytes) {
    fmt::format_to(std::back_inserter(out), "... more nodes not shown (max_bytes {})\n", max_bytes);
  }
}

/// Writes `t` as tree::to_string(limits) does (see write_nodes), or a line
/// saying why it cannot.
inline void write_tree(fd_writer& out, tree_state& t, const format_limits& limits,
                       std::size_t max_bytes) noexcept {
  const auto lock = t.try_lock_briefly();
  if (!lock.owns_lock()) {
    out += "(not shown: its tree is locked, maybe by the dying thread)\n";
  } else if (t.is_closed()) {
    out += "(the task has ended)\n";
  } else {
    write_nodes(out, t, limits, max_bytes);
  }
}

/// Writes every task of the global registry as `[key]` and its tree, the
/// tree `own` (the terminating thread's task) marked, then a last line; the
/// tasks that would start past `max_bytes` are only counted. Tasks come in
/// the registry's internal order: sorting would allocate.
template <class WriteKey>
void write_every_task(fd_writer& out, const tree_state* own, WriteKey write_key,
                      const format_limits& limits, std::size_t max_bytes) noexcept {
  const registry* reg = global_registry();
  if (reg == nullptr) {
    out += "await-tree: ";
    out += no_global_registry;
    out += '\n';
    return;
  }
  std::size_t shown = 0;
  std::size_t cut = 0;
  registry_access::state(*reg).try_visit_all(
      [&](const any_key& key, tree_state& t) {
        if (out.written() >= max_bytes) {
          ++cut;
          return;
        }
        out += '[';
        write_key(out, key);
        out += &t == own ? "]  <== the terminating thread's task\n" : "]\n";
        write_tree(out, t, limits, max_bytes);
        out += '\n';
        ++shown;
      },
      [&] {
        out += "await-tree: (a registry shard is locked, maybe by the dying thread: its tasks are ";
        out += "not shown)\n\n";
      });
  fmt::format_to(std::back_inserter(out), "await-tree: end of dump ({} {}", shown,
                 shown == 1 ? "task" : "tasks");
  if (cut > 0) {
    fmt::format_to(std::back_inserter(out), "; {} more not shown, max_bytes {}", cut, max_bytes);
  }
  out += ")\n";
}

}  // namespace await_tree::detail
