// SPDX-License-Identifier: Apache-2.0
#pragma once

// On-demand dumps: `kill -USR1 <pid>` prints every task's tree, as SIGQUIT
// prints every goroutine of a Go program. The signal handler only writes a
// byte to a pipe; a background thread makes the dump, so the dump is an
// ordinary one (sorted, grouped, JSON, as dump_options say). POSIX only.

#include <await_tree/detail/dump_file.hpp>
#include <await_tree/detail/fork_guard.hpp>
#include <await_tree/dump.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <fcntl.h>
#include <initializer_list>
#include <pthread.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>

namespace await_tree {

struct signal_dump_options {
  /// What to dump; by default every tree of the global registry as text.
  /// An unlimited `max_bytes` becomes handler_max_bytes (16 MiB).
  dump_options dump{};
  /// The file each dump is appended to; stderr when empty. Created with mode
  /// 0600; a symbolic link, a file that is not regular or one owned by
  /// another user is refused (see detail/dump_file.hpp). Put it in a
  /// directory only this user can write to.
  std::string path{};
};

namespace detail {

/// What the handler may touch: lock-free atomics only.
///
/// A forked child has none of the dump threads: its slots are emptied, so
/// that a signal there wakes no thread (the pipes lead to the parent's) and
/// the child may install signal_dumps of its own.
struct signal_dump_slots final : fork_participant {
  signal_dump_slots() {
    for (std::atomic<int>& fd : wake_fds) fd.store(-1);
    enroll_for_fork();
  }
  ~signal_dump_slots() { withdraw_from_fork(); }

  void lock_for_fork() noexcept override {}
  void unlock_after_fork(bool in_child) noexcept override {
    if (!in_child) return;
    for (std::atomic<int>& fd : wake_fds) fd.store(-1);
  }

  /// The write end of each installed signal_dump's pipe, by signal; -1 where
  /// there is none.
  std::array<std::atomic<int>, NSIG> wake_fds;
  /// A signal_dump closes its pipe only once no handler that may have read
  /// its descriptor is still running.
  std::atomic<int> handlers_running{0};
};

/// Created by the first signal_dump, before any handler is installed.
inline signal_dump_slots& signal_dump_state() {
  static signal_dump_slots slots;
  return slots;
}

inline constexpr char wake_byte = 'd';
inline constexpr char stop_byte = 's';

inline void on_dump_signal(int sig) noexcept {
  const int saved_errno = errno;
  signal_dump_slots& slots = signal_dump_state();
  slots.handlers_running.fetch_add(1);
  if (const int fd = slots.wake_fds[static_cast<std::size_t>(sig)].load(); fd >= 0) {
    // Non-blocking: when the pipe is full, a wake-up is pending anyway.
    static_cast<void>(::write(fd, &wake_byte, 1));
  }
  slots.handlers_running.fetch_sub(1);
  errno = saved_errno;
}

inline bool is_crash_signal(int sig) noexcept {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT;
}

[[noreturn]] inline void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace detail

/// While it exists, each delivery of its signal makes a background thread
/// write a dump to stderr or to a file. Deliveries during a dump lead to one
/// more dump. Destroying it restores the signal's previous action and stops
/// the thread.
///
/// In a child made by fork() the thread does not exist: the signal is
/// received and dropped there (it never reaches the parent's thread), and a
/// new signal_dump may take it. Destroying the child's copy only closes its
/// copy of the pipe.
///
///     await_tree::signal_dump on_usr1(SIGUSR1);   // then: kill -USR1 <pid>
class signal_dump {
 public:
  /// Throws std::invalid_argument for a signal number out of range, a crash
  /// signal (install_crash_handler is for those), or a signal that has a
  /// signal_dump already; std::system_error when the pipe, the thread or the
  /// handler cannot be set up (SIGKILL and SIGSTOP cannot be handled), or
  /// when the dump file is refused or cannot be created.
  explicit signal_dump(int sig = SIGUSR1, signal_dump_options options = {})
      : signal_(sig), options_(std::move(options)) {
    if (options_.dump.max_bytes == unlimited) options_.dump.max_bytes = handler_max_bytes;
    if (sig <= 0 || sig >= NSIG || detail::is_crash_signal(sig)) {
      throw std::invalid_argument("await-tree: signal_dump cannot use signal " +
                                  std::to_string(sig));
    }
    if (!options_.path.empty()) ::close(detail::open_dump_file(options_.path));
    open_pipe();
    try {
      claim_signal();
      install_handler();
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      release();
      throw;
    }
  }

  signal_dump(const signal_dump&) = delete;
  signal_dump& operator=(const signal_dump&) = delete;
  ~signal_dump() { release(); }

  [[nodiscard]] int signal() const noexcept { return signal_; }

 private:
  void open_pipe() {
    int fds[2];
    if (::pipe(fds) != 0) detail::throw_errno("await-tree: pipe");
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    if (::fcntl(read_fd_, F_SETFD, FD_CLOEXEC) != 0 ||
        ::fcntl(write_fd_, F_SETFD, FD_CLOEXEC) != 0 ||
        ::fcntl(write_fd_, F_SETFL, O_NONBLOCK) != 0) {
      const int error = errno;
      release();
      throw std::system_error(error, std::generic_category(), "await-tree: fcntl");
    }
  }

  void claim_signal() {
    int unused = -1;
    if (!detail::signal_dump_state().wake_fds[index()].compare_exchange_strong(unused, write_fd_)) {
      throw std::invalid_argument("await-tree: signal " + std::to_string(signal_) +
                                  " already has a signal_dump");
    }
    claimed_ = true;
  }

  void install_handler() {
    struct sigaction action {};
    action.sa_handler = &detail::on_dump_signal;
    action.sa_flags = SA_RESTART;  // the program's own system calls carry on
    sigemptyset(&action.sa_mask);
    if (::sigaction(signal_, &action, &previous_) != 0) {
      detail::throw_errno("await-tree: sigaction");
    }
    installed_ = true;
  }

  /// Undoes whatever of the set-up was done, in reverse order.
  void release() noexcept {
    if (generation_ != detail::fork_generation()) {
      forget_in_child();
      return;
    }
    if (installed_) ::sigaction(signal_, &previous_, nullptr);
    if (claimed_) {
      detail::signal_dump_slots& slots = detail::signal_dump_state();
      slots.wake_fds[index()].store(-1);
      while (slots.handlers_running.load() != 0) std::this_thread::yield();
    }
    if (thread_.joinable()) {
      while (::write(write_fd_, &detail::stop_byte, 1) != 1) std::this_thread::yield();
      thread_.join();
    }
    close_pipe();
  }

  void close_pipe() noexcept {
    for (int* fd : {&read_fd_, &write_fd_}) {
      if (*fd >= 0) ::close(std::exchange(*fd, -1));
    }
  }

  /// A forked child's copy: the thread stayed in the parent, the handler
  /// may belong to a signal_dump of the child's own.
  void forget_in_child() noexcept {
    detail::forget_thread_in_child(thread_);
    close_pipe();
  }

  void run() {
    // Keep the signal off this thread: it waits in read(), where some
    // runtimes (ThreadSanitizer's) hold a signal back until the call returns.
    sigset_t own;
    sigemptyset(&own);
    sigaddset(&own, signal_);
    pthread_sigmask(SIG_BLOCK, &own, nullptr);
    std::array<char, 64> wakes;
    for (;;) {
      const ssize_t n = ::read(read_fd_, wakes.data(), wakes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 ||
          std::find(wakes.begin(), wakes.begin() + n, detail::stop_byte) != wakes.begin() + n) {
        return;
      }
      write_dump();
    }
  }

  /// Failures go to stderr: there is no caller to tell. The file is opened
  /// anew for each dump, so that a rotated log is followed, and checked
  /// again each time.
  void write_dump() const noexcept {
    try {
      std::string text = dump_to_string(options_.dump);
      text += '\n';  // JSON: one dump a line; text: a blank line after each
      std::FILE* out = options_.path.empty() ? stderr : open_file();
      std::fwrite(text.data(), 1, text.size(), out);
      if (out == stderr) {
        std::fflush(out);
      } else {
        std::fclose(out);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "await-tree: the dump on signal %d failed: %s\n", signal_, e.what());
    }
  }

  [[nodiscard]] std::FILE* open_file() const {
    const int fd = detail::open_dump_file(options_.path);
    std::FILE* out = ::fdopen(fd, "a");
    if (out == nullptr) {
      const int error = errno;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "await-tree: fdopen");
    }
    return out;
  }

  [[nodiscard]] std::size_t index() const noexcept { return static_cast<std::size_t>(signal_); }

  int signal_;
  signal_dump_options options_;
  unsigned generation_ = detail::fork_generation();
  int read_fd_ = -1;
  int write_fd_ = -1;
  bool claimed_ = false;
  bool installed_ = false;
  struct sigaction previous_ {};
  std::thread thread_;
};

}  // namespace await_tree
