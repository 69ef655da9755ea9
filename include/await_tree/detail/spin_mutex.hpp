// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace await_tree::detail {

/// The lock of one task's tree. Its sections are a few dozen instructions, and
/// it is contended only when two threads of one task, or a snapshot, meet on
/// it: taking and giving it back costs one atomic exchange and one store,
/// where std::mutex pays two read-modify-writes and two library calls on
/// every instrumented await. A waiter spins briefly, then yields its time
/// slice, so a snapshot copying a large tree costs its waiters no CPU.
class spin_mutex {
 public:
  void lock() noexcept {
    if (locked_.exchange(true, std::memory_order_acquire)) [[unlikely]]
      lock_contended();
  }

  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }

  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  // Out of line and cold: inlined, the waiting loop took registers that
  // every function taking a lock then saved and restored. Reads until the
  // lock looks free, so that waiters do not bounce its cache line between
  // cores with failed exchanges.
  [[gnu::noinline, gnu::cold]] void lock_contended() noexcept {
    constexpr int spins_before_yielding = 100;
    do {
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins >= spins_before_yielding) std::this_thread::yield();
      }
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  std::atomic<bool> locked_{false};
};

/// Takes `m` if it is free or becomes free within about 100 ms. For dumps
/// made while the program dies, where the dying thread may hold `m` itself
/// and lock() would never return. Safe in a signal handler: it only tries
/// the lock and sleeps.
template <class Mutex>
std::unique_lock<Mutex> try_lock_briefly(Mutex& m) noexcept {
  std::unique_lock lock(m, std::try_to_lock);
  for (int attempt = 0; !lock.owns_lock() && attempt < 100; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    static_cast<void>(lock.try_lock());
  }
  return lock;
}

}  // namespace await_tree::detail
