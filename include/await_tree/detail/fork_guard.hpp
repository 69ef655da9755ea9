// SPDX-License-Identifier: Apache-2.0
#pragma once

// fork() copies one thread. A lock that another thread held at that instant
// stays held in the child forever, and the data it guards may be half
// changed. So the objects that own the library's locks enroll here, and
// pthread_atfork handlers take those locks before fork() and give them back
// after it, in the parent and in the child: the child starts with every lock
// free and every structure whole. Objects that own a thread learn in the
// child that the thread is not there (fork_generation).

#include <await_tree/detail/thread_context.hpp>
#include <await_tree/detail/tree_state.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace await_tree::detail {

/// An object whose locks are held across fork(). A derived class calls
/// enroll_for_fork() once its members are set up and withdraw_from_fork()
/// first thing in its destructor, so that no handler sees it half made.
class fork_participant {
 public:
  fork_participant(const fork_participant&) = delete;
  fork_participant& operator=(const fork_participant&) = delete;

  /// Takes this object's locks. Called with every other participant's
  /// earlier ones held, so a participant's locks must be ones whose holders
  /// never wait for another participant's.
  virtual void lock_for_fork() noexcept = 0;
  /// Gives them back, in the parent or in the child.
  virtual void unlock_after_fork(bool in_child) noexcept = 0;

 protected:
  fork_participant() = default;
  ~fork_participant() = default;

  void enroll_for_fork();
  void withdraw_from_fork() noexcept;

 private:
  friend struct fork_handlers;
  fork_participant* previous_ = nullptr;
  fork_participant* next_ = nullptr;
};

/// The participants, and the pthread_atfork handlers that walk them.
struct fork_handlers {
  /// Never destroyed: a registry may go after the static objects.
  static std::mutex& list_mutex() noexcept {
    static std::mutex* const m = new std::mutex;
    return *m;
  }
  static inline fork_participant* first = nullptr;
  /// Incremented in each child: an object that saw another value when it
  /// started its thread was copied into a child, without that thread.
  static inline std::atomic<unsigned> generation{0};

  // The thread list and the pool of trees are locked last: a snapshot takes
  // the list's lock while it holds a tree's, which a participant may want.
  static void before_fork() noexcept {
    list_mutex().lock();
    for (fork_participant* p = first; p != nullptr; p = p->next_) p->lock_for_fork();
    thread_list::instance().mutex().lock();
    tree_state::pool_mutex().lock();
  }
  static void after_fork_in_parent() noexcept { unlock_all(false); }
  static void after_fork_in_child() noexcept {
    generation.fetch_add(1);
    unlock_all(true);
  }
  static void unlock_all(bool in_child) noexcept {
    tree_state::pool_mutex().unlock();
    thread_list::instance().mutex().unlock();
    for (fork_participant* p = first; p != nullptr; p = p->next_) p->unlock_after_fork(in_child);
    list_mutex().unlock();
  }

  /// Registers the handlers once per process (they cannot be removed, and
  /// cost nothing while no object is enrolled).
  static void install_once() {
#if defined(__unix__) || defined(__APPLE__)
    static const bool installed [[maybe_unused]] =
        (pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child), true);
#endif
  }
};

inline void fork_participant::enroll_for_fork() {
  fork_handlers::install_once();
  const std::lock_guard lock(fork_handlers::list_mutex());
  next_ = fork_handlers::first;
  if (next_ != nullptr) next_->previous_ = this;
  fork_handlers::first = this;
}

inline void fork_participant::withdraw_from_fork() noexcept {
  const std::lock_guard lock(fork_handlers::list_mutex());
  (previous_ != nullptr ? previous_->next_ : fork_handlers::first) = next_;
  if (next_ != nullptr) next_->previous_ = previous_;
}

/// Which process an object was made in, as far as fork() goes.
[[nodiscard]] inline unsigned fork_generation() noexcept {
  return fork_handlers::generation.load();
}

/// Lets go of a forked child's copy of a thread object: the thread stayed in
/// the parent, so its handle names nothing here and joining or detaching it
/// is undefined (ThreadSanitizer aborts on it). Constructing over the copy
/// ends its life without a call on the handle, and leaves it not joinable.
inline void forget_thread_in_child(std::thread& copy) noexcept { std::construct_at(&copy); }

}  // namespace await_tree::detail
