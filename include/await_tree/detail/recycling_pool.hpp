// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/spin_mutex.hpp>

#include <array>
#include <cstddef>
#include <mutex>
#include <utility>

namespace await_tree::detail {

/// Objects that are recycled, never freed (see tree_state). Each thread keeps
/// a few given back on it, so that threads registering tasks at once take and
/// give back without meeting on a shared lock or cache line; the rest wait on
/// a shared list behind a spin lock, and a thread's own ones join that list
/// when the thread exits.
///
/// The shared list is intrusive: it links the objects through their
/// `recycled_next` member, which only the pool uses while it holds them.
/// Giving back thus never allocates, and never frees a grown list's old
/// buffer: a burst of tasks ending once freed 64 KiB at a time, which made
/// glibc consolidate its fast bins and slowed every allocation of the
/// coroutine frames that followed (+170 instructions a spawned task, row
/// `spawn_registered` of tests/bench/instructions.sh).
template <class T>
class recycling_pool {
 public:
  static recycling_pool& instance() noexcept { return instance_; }

  /// A recycled object, or nullptr when there is none. Out of line, as
  /// local() is (see there), but reading the cache in place: a thread that
  /// has not enrolled has nothing cached.
  [[gnu::noinline]] T* take() noexcept {
    thread_cache& mine = cache_;
    if (mine.size > 0) return mine.items[--mine.size];
    const std::lock_guard lock(mutex_);
    T* t = shared_;
    if (t != nullptr) shared_ = t->recycled_next;
    return t;
  }

  void give_back(T* t) noexcept { give_back_to(local(), t); }

  /// give_back() reading the cache in place: only for callers that are out
  /// of line themselves and no coroutine body (see local()). A call less
  /// where a task ends (10 instructions).
  [[gnu::always_inline]] void give_back_in_place(T* t) noexcept {
    give_back_to(local_in_place(), t);
  }

  /// The shared list's lock, for fork(): see fork_guard.hpp.
  [[nodiscard]] spin_mutex& mutex() noexcept { return mutex_; }

 private:
  static constexpr std::size_t cached_per_thread = 16;

  enum class cache_state : unsigned char { fresh, enrolled, flushed };

  struct thread_cache {
    std::array<T*, cached_per_thread> items{};
    std::size_t size = 0;
    std::size_t capacity = 0;  // cached_per_thread once enrolled
    cache_state state = cache_state::fresh;
  };

  /// Made on a thread's first use of the pool; at its exit, hands the
  /// thread's objects to the shared list. Later give-backs on that thread (by
  /// other thread-locals' destructors) go there directly. It keeps the
  /// cache's address from the enrolment: GCC 12 at -O2 with UBSan computed a
  /// null address for the thread-local in this destructor.
  struct flush_at_exit {
    explicit flush_at_exit(thread_cache* cache) noexcept : mine(cache) {}
    flush_at_exit(const flush_at_exit&) = delete;
    flush_at_exit& operator=(const flush_at_exit&) = delete;
    ~flush_at_exit() {
      mine->state = cache_state::flushed;
      mine->capacity = 0;
      for (std::size_t i = 0; i < mine->size; ++i) instance().give_back_shared(mine->items[i]);
      mine->size = 0;
    }

    thread_cache* mine;
  };

  /// Out of line: clang before 19 may cache a thread-local's address across
  /// a coroutine's suspension (LLVM #47179), and trees are taken and given
  /// back in coroutines. The cache is reached with one initial-exec access,
  /// as the thread's context is (tests/check_tls.sh).
  [[gnu::noinline]] static thread_cache& local() noexcept { return local_in_place(); }

  [[gnu::always_inline]] static thread_cache& local_in_place() noexcept {
    thread_cache& mine = cache_;
    if (mine.state == cache_state::fresh) [[unlikely]]
      enroll_this_thread(mine);
    return mine;
  }

  void give_back_to(thread_cache& mine, T* t) noexcept {
    if (mine.size < mine.capacity) {
      mine.items[mine.size++] = t;
      return;
    }
    give_back_shared(t);
  }

  /// Once per thread: arranges the flush at its exit, which takes a
  /// thread-local with a destructor (and, in a shared library, a call to
  /// __tls_get_addr).
  [[gnu::noinline, gnu::cold]] static void enroll_this_thread(thread_cache& mine) noexcept {
    static thread_local const flush_at_exit flusher{&mine};
    static_cast<void>(flusher);
    mine.state = cache_state::enrolled;
    mine.capacity = cached_per_thread;
  }

  void give_back_shared(T* t) noexcept {
    const std::lock_guard lock(mutex_);
    t->recycled_next = std::exchange(shared_, t);
  }

  [[gnu::tls_model("initial-exec")]] static inline constinit thread_local thread_cache cache_{};
  // Constant-initialised and trivially destructible, so that it needs no
  // guard and outlives every thread that gives back at the process's exit.
  static recycling_pool instance_;
  spin_mutex mutex_;
  T* shared_ = nullptr;  // the shared list's head
};

template <class T>
constinit recycling_pool<T> recycling_pool<T>::instance_{};

}  // namespace await_tree::detail
