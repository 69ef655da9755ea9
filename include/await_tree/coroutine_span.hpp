// SPDX-License-Identifier: Apache-2.0
#pragma once

// Whole-coroutine spans, the counterpart of the Rust crate's #[instrument]:
//
//   task<Block> read_block(int id) {
//     auto scope = co_await await_tree::coroutine_span();
//     ...
//   }
//
// makes every call of read_block a node `read_block` (under the node of
// whoever awaits it) for as long as its body runs, and puts the body's own
// awaits under it: a call chain shows up without instrumenting call sites.

#include <await_tree/call_site.hpp>
#include <await_tree/detail/suspension.hpp>
#include <await_tree/instrumented.hpp>
#include <await_tree/promise.hpp>
#include <await_tree/span.hpp>

#include <coroutine>
#include <utility>

namespace await_tree {

/// The node of a coroutine's body, from `co_await coroutine_span()` to the
/// end of the scope that holds it (normally the body: the node goes when the
/// body returns, throws, or its frame is destroyed while suspended). Clang
/// warns when it is thrown away at once; GCC 12 does not for a `co_await`.
class [[nodiscard(
    "the node lives as long as this object: keep it, "
    "`auto scope = co_await await_tree::coroutine_span();`")]] coroutine_scope {
 public:
  coroutine_scope() noexcept = default;
  coroutine_scope(coroutine_scope && other) noexcept
      : context_(std::exchange(other.context_, nullptr)),
        outer_(other.outer_),
        node_(other.node_),
        frame_(other.frame_) {}
  coroutine_scope& operator=(coroutine_scope&&) = delete;
  ~coroutine_scope() { close(); }

  /// Whether the coroutine got a node (it runs in a task that records it).
  [[nodiscard]] bool has_node() const noexcept { return context_ != nullptr; }

 private:
  friend class coroutine_span_awaiter;

  /// Adds `label`'s node under the coroutine's position and makes it the
  /// position of the coroutine's awaits from now on.
  [[gnu::noinline]] void open(detail::coroutine_context & c, const span& label, const void* frame) {
    detail::thread_context& tc = detail::thread_context_in_place();
    if (!c.started) detail::start(c, tc, frame);
    if (c.home.empty()) return;
    detail::tree_state& t = *c.home.tree;
    {
      const auto lock = t.lock();
      if (!t.is_open_at(c.home)) return;
      node_ = t.add(c.home.node, &label);
      outer_ = c.home;
      c.home = t.at(node_);
    }
    context_ = &c;
    frame_ = frame;
    tc.set({c.home, frame, detail::context_kind::running});
  }

  /// Gives the coroutine its outer position back and removes the node.
  [[gnu::noinline]] void close() noexcept {
    if (context_ == nullptr) return;
    detail::tree_state& t = *context_->home.tree;
    context_->home = std::exchange(outer_, {});
    // When the frame is destroyed while suspended, the thread runs other code.
    detail::thread_context& tc = detail::thread_context_in_place();
    if (tc.here.frame == frame_ && tc.here.kind == detail::context_kind::running) {
      tc.set({context_->home, frame_, detail::context_kind::running});
    }
    context_ = nullptr;
    bool last = false;
    {
      const auto lock = t.lock();
      last = t.remove(node_);
    }
    if (last) t.release();
  }

  detail::coroutine_context* context_ = nullptr;  // while it holds a node
  detail::position outer_;
  detail::node_ref node_;
  const void* frame_ = nullptr;
};

/// The awaiter of `coroutine_span()`: it never suspends; it opens the node
/// with the coroutine's promise, which only an await can reach.
class coroutine_span_awaiter {
 public:
  /// `label` outlives every node: a call site's name, kept by the process.
  explicit coroutine_span_awaiter(const span& label) noexcept : label_(&label) {}

  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    static_assert(detail::integrated_promise<Promise>,
                  "await_tree::coroutine_span() needs an integrated task type: one whose "
                  "promise derives from await_tree::promise_mixin and passes its final "
                  "awaiter through await_tree::on_final_suspend (README: \"How a task's "
                  "context follows it\"). In other coroutines, instrument the awaits instead.");
    if constexpr (detail::integrated_promise<Promise>) {  // else only the message above
      scope_.open(detail::context_of(h), *label_, h.address());
    }
    return false;
  }

  coroutine_scope await_resume() noexcept { return std::move(scope_); }

 private:
  const span* label_;
  coroutine_scope scope_;
};

/// `auto scope = co_await await_tree::coroutine_span();` at the top of a
/// coroutine of an integrated task type: a node named after the coroutine
/// (`ns::S::read_block`, see call_site) for the rest of the scope.
inline coroutine_span_awaiter coroutine_span(call_site site = {}) {
  return coroutine_span_awaiter(detail::call_site_table::of(site.location()).function_only);
}

// The awaiter follows the protocol itself: promise_mixin passes it through.
template <>
inline constexpr bool is_instrumented_v<coroutine_span_awaiter> = true;

}  // namespace await_tree
