// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the code running on this thread belongs to: the thread half of the
// context model (context.hpp states the contract; promise.hpp and
// suspension.hpp keep it).
//
// A coroutine's own position lives in its frame (the promise of an
// integrated coroutine, an instrumented awaiter's node), so it is right
// wherever and by whomever the coroutine is resumed. The thread-local state
// below only says what runs *now*, and which position a coroutine that starts
// now takes. It is one trivially constructible struct, read and written only
// by out-of-line functions: clang before 19 caches a thread-local's address
// across a suspension point in a coroutine body (LLVM #47179).
//
// States (`here.kind`): what each means, who sets it, who may rely on it.
//
// * none: nothing is known. Set by what an activation gives back.
// * running: integrated coroutine `frame` runs at `at`. Set when it starts
//   (or is transferred to by an await of its task type) and at every
//   resumption. Trusted by everyone.
// * window: a bracketed region of the task at `at`: an instrumented
//   await_suspend of integrated coroutine `frame` starting code, a task's
//   root, a context_scope; undone when the region ends. Trusted by everyone.
//
// A state may be *held back* for a coroutine (`held_for`): it is what runs
// below that coroutine, which runs now and which the library cannot see (a
// symmetric transfer went to it: the awaiter of an ending coroutine, a
// scheduler's next, an event's waiter). Then nothing is trusted: that
// coroutine, if integrated, takes the state when it resumes (as what it
// gives back); any other coroutine that resumes gives it back still held;
// one that starts takes its position only when the state is its own. The
// integrated coroutine the state names reclaims it when its code awaits
// again: the activation that held it back (a task it woke inline) is over.
//
// Only `running` and `window`, not held back, say that code of the task runs
// at `at`: they are published for the `<== current` markers and answer
// current_tree(). Every state is validated against the tree before use (the
// tree's incarnation and the node's serial), so a state left behind names at
// worst a node that is gone: it is refused.
//
// A coroutine the library cannot see start, suspend or end (one that is not
// integrated) is never trusted with a state: it may have been resumed inline
// by another task, and a destroyed coroutine's frame address is reused. Its
// instrumented awaits only forward.

#include <await_tree/detail/spin_mutex.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace await_tree::detail {

class tree_state;

using node_id = std::uint32_t;

/// Names one incarnation of a node: slots are reused, serial numbers are not,
/// so a stale reference is recognised instead of hitting the slot's next user.
struct node_ref {
  node_id id = static_cast<node_id>(-1);
  std::uint32_t serial = 0;
  friend bool operator==(node_ref, node_ref) = default;
};

/// A node of one incarnation of a tree: trees are pooled and never freed, so
/// `tree` always points at a tree_state, which is the one meant while its
/// incarnation matches (checked under its lock).
struct position {
  tree_state* tree = nullptr;
  std::uint32_t incarnation = 0;
  node_ref node;
  [[nodiscard]] bool empty() const noexcept { return tree == nullptr; }
  friend bool operator==(const position&, const position&) = default;
};

enum class context_kind : std::uint8_t { none, running, window };

struct context_state {
  position at;
  const void* frame = nullptr;
  context_kind kind = context_kind::none;
  const void* held_for = nullptr;  // held back for this coroutine (see thread_context)

  [[nodiscard]] bool says_task_runs() const noexcept {
    return held_for == nullptr && (kind == context_kind::running || kind == context_kind::window);
  }
};

/// Where code of a task runs on this thread, published for other threads'
/// snapshots behind a sequence counter (odd while being written). Written
/// only by its thread, so that thread reads it without synchronisation.
struct published_position {
  std::atomic<std::uint32_t> sequence{0};
  std::atomic<tree_state*> tree{nullptr};
  std::atomic<std::uint32_t> incarnation{0};
  std::atomic<std::uint64_t> node{0};

  /// Publishes `p` (empty: no task runs here), unless it is published already.
  void store(const position& p) noexcept {
    const std::uint64_t packed = pack(p.node);
    if (tree.load(std::memory_order_relaxed) == p.tree &&
        node.load(std::memory_order_relaxed) == packed &&
        incarnation.load(std::memory_order_relaxed) == p.incarnation) {
      return;
    }
    // Release stores and acquire loads instead of fences (which GCC's
    // ThreadSanitizer does not support); on x86 both are plain moves. A
    // reader that sees any field written here sees the odd count before it.
    const std::uint32_t seq = sequence.load(std::memory_order_relaxed);
    sequence.store(seq + 1, std::memory_order_relaxed);
    tree.store(p.tree, std::memory_order_release);
    incarnation.store(p.incarnation, std::memory_order_release);
    node.store(packed, std::memory_order_release);
    sequence.store(seq + 2, std::memory_order_release);
  }

  /// The position another thread published for `t`'s incarnation `inc`, if
  /// it reads consistently.
  [[nodiscard]] bool read(const tree_state* t, std::uint32_t inc, node_ref& out) const noexcept {
    const std::uint32_t before = sequence.load(std::memory_order_acquire);
    if (before % 2 != 0) return false;
    const bool mine = tree.load(std::memory_order_acquire) == t &&
                      incarnation.load(std::memory_order_acquire) == inc;
    const std::uint64_t packed = node.load(std::memory_order_acquire);
    if (!mine || sequence.load(std::memory_order_relaxed) != before) return false;
    out = {static_cast<node_id>(packed >> 32), static_cast<std::uint32_t>(packed)};
    return true;
  }

 private:
  static std::uint64_t pack(node_ref n) noexcept { return (std::uint64_t{n.id} << 32) | n.serial; }
};

/// A state handed along a symmetric transfer to the coroutine `frame`: what
/// the activation gives back when that coroutine suspends.
struct carried_state {
  const void* frame = nullptr;
  context_state state;
  position at;  // where `frame` starts: bound at the transfer, whatever runs before its first await
};

/// One thread's context: what runs now, and the states carried to integrated
/// coroutines that have not taken theirs yet (they take it at their first
/// await or at their end), innermost last. Nested activations (an event set
/// in a coroutine's first lines, waking another task inline) carry their own
/// above the ones that wait.
///
/// A *handback*: when a transfer goes to a coroutine of a type unknown here
/// (an integrated coroutine ending, to the coroutine that awaited it; any
/// await, to a scheduler's next or an event's waiter), `here` is already what
/// the activation gives back, but it is held back for that coroutine
/// (`held_for`): an integrated one takes it when it resumes; while code of
/// any other runs, `here` vouches for nobody but the coroutine it names. The
/// mark is part of the state, so that whatever saves and restores the state
/// (an activation nested in that code, a context_scope) keeps it.
///
/// One state is carried per activation nested inline whose coroutine has
/// not awaited yet (a task whose first statement sets an event, waking a
/// task whose child's first statement sets another, ...): eight deep is
/// exact; the thread-local stays under a kilobyte, which a shared library
/// loaded with dlopen() can still have in the static TLS block.
struct thread_context {
  context_state here;
  std::array<carried_state, 8> carried{};
  std::uint32_t carried_count = 0;
  published_position published;
  bool listed = false;

  void set(const context_state& s) noexcept {
    here = s;
    publish_here();
  }

  /// set() for a symmetric transfer: when the code of the task goes on at
  /// the same position (from a window to the coroutine started at its node),
  /// what is published stays, and only the coroutine is renamed.
  [[gnu::always_inline]] void transfer(const context_state& s) noexcept {
    if (s.kind == context_kind::running && here.says_task_runs() && here.at == s.at) {
      here.frame = s.frame;
      here.kind = s.kind;
      return;
    }
    set(s);
  }

  /// Integrated coroutine `frame` runs at `at`: set() unless it is so already
  /// (a coroutine starting where the transfer to it said it would).
  void run(const position& at, const void* frame) noexcept {
    if (here.kind != context_kind::running || here.frame != frame || here.at != at ||
        here.held_for != nullptr) {
      // set(), without building the state on the stack first.
      here.at = at;
      here.frame = frame;
      here.held_for = nullptr;
      here.kind = context_kind::running;
      publish(at);
    }
  }

  /// The activation of `self` is over for good (its task has ended): what
  /// it gives back (take_resumer) runs here now. Chosen in place: taken into
  /// a state of its own first, then set, it cost two copies more.
  void give_back_for(const void* self) noexcept {
    if (const carried_state* carried_here = take_carried_to(self)) {
      set(carried_here->state);
      return;
    }
    to_given_back(self, here);
    publish_here();
  }

  /// `s` is what runs below `next`, held back for it. A state held back
  /// already stays held for the coroutine it names: the code below `next`
  /// is that coroutine's (it resumed `next`'s activation inline), which
  /// `next` gives it back to when it suspends.
  void hand_back(const context_state& s, const void* next) noexcept {
    here = s;
    if (here.held_for == nullptr) here.held_for = next;
    publish_nothing();
  }

  /// `self`, integrated, runs again under its own state, which an
  /// activation nested in its code (a task it woke inline) handed back held
  /// for a coroutine the library did not see: that activation is over, since
  /// `self`'s code runs, so the state vouches again.
  void reclaim(const void* self) noexcept {
    if (here.held_for != nullptr && here.frame == self) [[unlikely]]
      reclaim_held();
  }

  [[nodiscard]] bool says_task_runs() const noexcept { return here.says_task_runs(); }

  /// Whether this thread knows of no task: no position, nothing carried.
  /// Every state without a position then means what `none` means (nothing
  /// attaches under it, no marker, no current tree), so a protocol point that
  /// would only write such states may leave the thread as it is: the fast
  /// path of integrated coroutines outside any task.
  [[nodiscard]] bool idle() const noexcept { return here.at.empty() && carried_count == 0; }

  /// Whether a coroutine `self` that starts now may take the position of
  /// `here` as its own.
  [[nodiscard]] bool vouches_for(const void* self) const noexcept {
    if (here.held_for != nullptr) return here.frame == self;
    return here.says_task_runs();
  }

  /// Past the capacity the oldest goes: its coroutine then starts at no
  /// position and gives back nothing (its tree shows less). Always inlined
  /// into end_suspend: left to GCC's unit-wide inlining budget, it was
  /// called out of line in some programs and not in others (+32
  /// instructions a transfer).
  [[gnu::always_inline]] void carry(const context_state& s, const void* next,
                                    const position& at) noexcept {
    if (carried_count > 0 && carried[carried_count - 1].frame == next) {
      carried[carried_count - 1].state = s;  // an enclosing await's, which it replaces
      return;
    }
    if (carried_count == carried.size()) [[unlikely]]
      drop_oldest_carried();
    carried[carried_count++] = {next, s, at};
  }

  /// The state carried to `self`, taken off the list with those above it
  /// (they belong to activations that have ended); null when there is none.
  /// Valid until the next carry().
  [[gnu::always_inline]] const carried_state* take_carried_to(const void* self) noexcept {
    for (std::uint32_t i = carried_count; i-- > 0;) {
      if (carried[i].frame == self) {
        carried_count = i;
        return &carried[i];
      }
    }
    return nullptr;
  }

  /// Takes, into `out`, what a transfer gave `self` if the library did not
  /// see `self` resume from it (after a co_yield): the state carried to it
  /// last, or the state held back for it.
  [[gnu::always_inline]] void take_given(const void* self, context_state& out) noexcept {
    if (carried_count > 0 && carried[carried_count - 1].frame == self) {
      out = carried[--carried_count].state;
    } else {
      take_held_for(self, out);
    }
  }

  /// What a coroutine `self` starting or resuming now gives back when it
  /// next suspends, written to `out`: what was carried or handed back to it,
  /// else what ran before it, held back still if it was held back for
  /// another coroutine (the code below may be that one's); nothing when
  /// that is `self`'s own state (handed to it by a transfer whose carried
  /// state is gone). Written in place: returned by value, the choice between
  /// two states was built on the stack and copied.
  [[gnu::always_inline]] void take_resumer(const void* self, context_state& out) noexcept {
    if (const carried_state* carried_here = take_carried_to(self)) {
      out = carried_here->state;
      return;
    }
    out = here;
    to_given_back(self, out);
  }

 private:
  void publish(const position& p) noexcept;
  /// Publishes where code of a task runs, if `here` says it does. Two calls,
  /// not one of a chosen position: the choice was built on the stack, then
  /// read back (8 instructions a set).
  void publish_here() noexcept {
    if (here.says_task_runs()) {
      publish(here.at);
    } else {
      publish_nothing();
    }
  }
  /// publish() of the empty position: a thread that never published has
  /// nothing to take back.
  void publish_nothing() noexcept {
    if (listed) published.store({});
  }
  void publish_first(const position& p) noexcept;  // the thread's first, which lists it

  /// Takes, into `out`, the state held back for `self`, no longer held.
  [[gnu::always_inline]] void take_held_for(const void* self, context_state& out) noexcept {
    if (here.held_for != self) return;
    out = here;
    out.held_for = nullptr;
  }

  /// Makes `s`, the thread's state as `self` suspends or ends with nothing
  /// carried to it, what `self` gives back: a state held back for `self` no
  /// longer held; nothing for `self`'s own state; any other state as it is.
  /// One rule for take_resumer and give_back_for.
  [[gnu::always_inline]] static void to_given_back(const void* self, context_state& s) noexcept {
    if (s.held_for == self) {
      s.held_for = nullptr;
    } else if (s.held_for == nullptr && s.frame == self) {
      s = {};
    }
  }

  [[gnu::noinline, gnu::cold]] void reclaim_held() noexcept {
    context_state own = here;
    own.held_for = nullptr;
    set(own);
  }

  // Out of line and cold, as the rest of the rare paths of the await path.
  [[gnu::noinline, gnu::cold]] void drop_oldest_carried() noexcept {
    std::move(carried.begin() + 1, carried.end(), carried.begin());
    --carried_count;
  }
};

/// The threads that have published a position, for snapshots. Never freed:
/// threads may still leave it while the process exits.
class thread_list {
 public:
  static thread_list& instance() {
    static thread_list* list = new thread_list;
    return *list;
  }

  void add(thread_context* t) {
    const std::lock_guard lock(mutex_);
    threads_.push_back(t);
  }
  void remove(thread_context* t) noexcept {
    const std::lock_guard lock(mutex_);
    std::erase(threads_, t);
  }

  /// For fork(): see fork_guard.hpp.
  [[nodiscard]] spin_mutex& mutex() noexcept { return mutex_; }

  /// Calls `mark(node_ref)` for each thread running code of `t`'s
  /// incarnation `inc` now. `lock_list` takes the list's mutex
  /// (try_lock_briefly in the crash handlers).
  template <class Lock, class Mark>
  void for_each_running(const tree_state* t, std::uint32_t inc, Lock lock_list, Mark mark) const {
    const auto lock = lock_list(mutex_);
    if (!lock.owns_lock()) return;
    for (const thread_context* c : threads_) {
      node_ref n;
      if (c->published.read(t, inc, n)) mark(n);
    }
  }

 private:
  mutable spin_mutex mutex_;
  std::vector<thread_context*> threads_;
};

// See thread_context: small enough for the static TLS block of a library
// loaded with dlopen().
static_assert(sizeof(thread_context) <= 1024);

/// Takes the calling thread off the list when it exits.
struct thread_listing {
  thread_context* context;
  ~thread_listing() { thread_list::instance().remove(context); }
};

[[gnu::noinline]] inline void list_this_thread(thread_context& c) {
  thread_list::instance().add(&c);
  c.listed = true;
  static thread_local thread_listing listing{&c};
}

inline void thread_context::publish(const position& p) noexcept {
  if (!listed) [[unlikely]] {
    publish_first(p);
    return;
  }
  published.store(p);
}

// Out of line and cold: with the listing's call and handler inlined, every
// set() saved and restored five registers (10 instructions).
[[gnu::noinline, gnu::cold]] inline void thread_context::publish_first(const position& p) noexcept {
  if (p.empty()) return;
  try {
    list_this_thread(*this);
  } catch (...) {
    return;  // no memory for the list: this thread's markers are not shown
  }
  published.store(p);
}

/// This thread's context, read in place (initial-exec, so that a
/// position-independent build reads it with one %fs-relative load). Only for
/// functions that are out of line themselves, such as the protocol of
/// suspension.hpp: inlined into a coroutine body, its address could be kept
/// across a suspension (see above).
[[gnu::always_inline]] inline thread_context& thread_context_in_place() noexcept {
  [[gnu::tls_model("initial-exec")]] constinit static thread_local thread_context context;
  return context;
}

/// This thread's context, from anywhere: out of line, so that no coroutine
/// body caches its address.
[[gnu::noinline]] inline thread_context& this_thread_context() noexcept {
  return thread_context_in_place();
}

}  // namespace await_tree::detail
