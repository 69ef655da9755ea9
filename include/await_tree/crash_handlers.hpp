// SPDX-License-Identifier: Apache-2.0
#pragma once

// Dumps when the process dies: install_terminate_handler() for
// std::terminate, install_crash_handler() for the fatal signals. Both are
// opt-in, print the global registry, and only try mutexes (a tree the dying
// thread holds locked is reported as not shown). POSIX only.

#include <await_tree/context.hpp>
#include <await_tree/detail/dying_dump.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <pthread.h>
#include <signal.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace await_tree {

/// The bounds of the dumps written while the process dies.
struct dying_dump_options {
  /// As in dumps, but at most 1,000 nodes per tree: without allocating, the
  /// walk puts siblings in order by scanning them, so that a node with many
  /// children costs its child count per line.
  format_limits limits{.max_nodes = 1000};
  /// Tasks and nodes that would start past this are left out.
  std::size_t max_bytes = handler_max_bytes;
};

namespace detail {

/// One dump per dying process: the terminate handler's abort() raises
/// SIGABRT, and the crash handler must not print everything again.
enum class dying_dump_state { idle, writing, written };
inline std::atomic<dying_dump_state> dying_dump{dying_dump_state::idle};

[[nodiscard]] inline bool claim_dying_dump() noexcept {
  auto expected = dying_dump_state::idle;
  return dying_dump.compare_exchange_strong(expected, dying_dump_state::writing);
}

/// Lets another thread finish its dump before this one ends the process;
/// bounded, in case that thread is this one (a fault inside the dump).
inline void wait_for_dying_dump() noexcept {
  for (int i = 0; i < 1000 && dying_dump.load() == dying_dump_state::writing; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

inline std::atomic<bool> terminate_handler_installed{false};
inline std::atomic<int> terminate_fd{STDERR_FILENO};
inline std::atomic<std::terminate_handler> previous_terminate_handler{nullptr};
/// Written once, before terminate_fd (or crash_fd) is stored, which the
/// handler loads first: the store and the load order it.
inline dying_dump_options terminate_options{};

/// ` after an uncaught exception: what()`, or what else ended the program.
inline void describe_terminate_cause(fd_writer& out) {
  const std::exception_ptr error = std::current_exception();
  if (!error) {
    out += " (no exception is active)\n";
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    out += " after an uncaught exception: ";
    append_text_escaped(out, e.what());
    out += '\n';
  } catch (...) {
    out += " after an uncaught exception that is not a std::exception\n";
  }
}

/// Outside a signal handler a key may be formatted as usual.
inline void write_key_allocating(fd_writer& out, const any_key& key) noexcept {
  try {
    out += key.to_string();
  } catch (...) {
    write_key_without_allocating(out, key);
  }
}

inline void write_terminate_dump(int fd) {
  std::array<char, 4096> buffer;
  fd_writer out(fd, buffer.data(), buffer.size());
  out += "await-tree: std::terminate called";
  describe_terminate_cause(out);
  const thread_context& tc = this_thread_context();
  tree_state* own = tc.says_task_runs() ? tc.here.at.tree : nullptr;
  const dying_dump_options& options = terminate_options;
  if (own != nullptr) {
    out += "await-tree: the terminating thread's task:\n";
    write_tree(out, *own, options.limits, options.max_bytes);
    out += '\n';
  }
  out += "await-tree: every task:\n";
  write_every_task(out, own, &write_key_allocating, options.limits, options.max_bytes);
}

[[noreturn]] inline void on_terminate() noexcept {
  if (claim_dying_dump()) {
    write_terminate_dump(terminate_fd.load());
    dying_dump.store(dying_dump_state::written);
  }
  if (const std::terminate_handler previous = previous_terminate_handler.load()) previous();
  std::abort();  // a terminate handler must not return
}

inline constexpr std::array<int, 5> crash_signals{SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
inline std::atomic<bool> crash_handler_installed{false};
inline std::atomic<int> crash_fd{STDERR_FILENO};
/// Written once, before terminate_fd (or crash_fd) is stored, which the
/// handler loads first: the store and the load order it.
inline dying_dump_options crash_options{};
/// The crash dump's buffer, reserved before any crash: the handler allocates
/// nothing.
inline std::array<char, 4096> crash_buffer{};

inline const char* signal_name(int sig) noexcept {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "unknown";
  }
}

inline void write_crash_dump(int fd, int sig) noexcept {
  fd_writer out(fd, crash_buffer.data(), crash_buffer.size());
  fmt::format_to(std::back_inserter(out), "await-tree: fatal signal {} ({}); every task:\n", sig,
                 signal_name(sig));
  write_every_task(out, nullptr, &write_key_without_allocating, crash_options.limits,
                   crash_options.max_bytes);
}

/// The action of each crash signal before install_crash_handler(), by
/// signal: the handler passes the signal on to it.
inline std::array<struct sigaction, NSIG> previous_crash_actions{};

/// Restores the default action and raises `sig` again. The signal is
/// blocked while its handler runs, so it is delivered, fatally and with a
/// core dump where enabled, as soon as the handler returns.
inline void reraise_with_default_action(int sig) noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(sig, &action, nullptr);
  raise(sig);
}

inline bool is_ignored(const struct sigaction& action) noexcept {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_IGN;
}

inline bool is_default(const struct sigaction& action) noexcept {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_DFL;
}

/// Hands the signal to the action installed before ours, as the kernel
/// would have: its handler with the same arguments (with its mask added to
/// the blocked signals, and reset to the default action first if it asked
/// for SA_RESETHAND), or the default action.
inline void pass_on_crash_signal(int sig, siginfo_t* info, void* context) noexcept {
  const struct sigaction& previous = previous_crash_actions[static_cast<std::size_t>(sig)];
  if (is_default(previous)) {
    reraise_with_default_action(sig);
    return;
  }
  pthread_sigmask(SIG_BLOCK, &previous.sa_mask, nullptr);
  if ((previous.sa_flags & SA_RESETHAND) != 0) {
    struct sigaction reset {};
    reset.sa_handler = SIG_DFL;
    sigemptyset(&reset.sa_mask);
    sigaction(sig, &reset, nullptr);
  }
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    previous.sa_sigaction(sig, info, context);
  } else {
    previous.sa_handler(sig);
  }
}

inline void on_crash_signal(int sig, siginfo_t* info, void* context) noexcept {
  const int saved_errno = errno;
  if (claim_dying_dump()) {
    write_crash_dump(crash_fd.load(), sig);
    dying_dump.store(dying_dump_state::written);
  } else {
    wait_for_dying_dump();
  }
  errno = saved_errno;  // the previous handler sees the program's errno
  pass_on_crash_signal(sig, info, context);
  errno = saved_errno;
}

inline void change_action(int sig, const struct sigaction* action, struct sigaction* previous) {
  if (sigaction(sig, action, previous) != 0) {
    throw std::system_error(errno, std::generic_category(), "await-tree: sigaction");
  }
}

/// A stack overflow leaves no stack for the handler: give the calling
/// thread an alternate one, unless it has one. Other threads need their own
/// (sigaltstack is per thread); without one, the process still dies with
/// the signal, only without a dump.
inline void ensure_alternate_signal_stack() noexcept {
  stack_t current{};
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
  alignas(16) static std::array<char, 64 * 1024> stack;
  stack_t alternate{};
  alternate.ss_sp = stack.data();
  alternate.ss_size = stack.size();
  sigaltstack(&alternate, nullptr);
}

}  // namespace detail

/// On std::terminate (an exception escaping a task, a noexcept function
/// throwing), writes to `fd`: the cause (the exception's what()), the tree of
/// the task the terminating thread runs, if any, then every task of the
/// global registry with that one marked; then calls the handler installed
/// before (the standard library's prints the exception's type and aborts).
/// The dump is bounded by `options`. Returns false and changes nothing when
/// already installed.
inline bool install_terminate_handler(int fd = STDERR_FILENO, dying_dump_options options = {}) {
  if (detail::terminate_handler_installed.exchange(true)) return false;
  detail::terminate_options = options;
  detail::terminate_fd.store(fd);
  detail::previous_terminate_handler.store(std::set_terminate(&detail::on_terminate));
  return true;
}

/// On SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT, writes every task of the
/// global registry to `fd` without allocating and without waiting for a
/// mutex the crashing thread may hold, then passes the signal on to the
/// action installed before: a crash reporter's handler (Breakpad, Crashpad,
/// Sentry, glog) is called with the same signal, siginfo_t and context; with
/// the default action, the handler restores it and re-raises the signal, so
/// that the process dies of it (with a core dump where enabled). A signal
/// whose action is SIG_IGN is left ignored. Install it after the crash
/// reporters, so that the dump comes first and theirs still runs. The dump is
/// bounded by `options`. Returns false and changes nothing when already
/// installed; throws std::system_error when a handler cannot be installed.
inline bool install_crash_handler(int fd = STDERR_FILENO, dying_dump_options options = {}) {
  if (detail::crash_handler_installed.exchange(true)) return false;
  detail::crash_options = options;
  detail::crash_fd.store(fd);
  detail::ensure_alternate_signal_stack();
  struct sigaction action {};
  action.sa_sigaction = &detail::on_crash_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);  // plus every crash signal: a fault in the dump is fatal at once
  for (const int sig : detail::crash_signals) sigaddset(&action.sa_mask, sig);
  for (const int sig : detail::crash_signals) {
    struct sigaction& previous = detail::previous_crash_actions[static_cast<std::size_t>(sig)];
    detail::change_action(sig, nullptr, &previous);
    if (!detail::is_ignored(previous)) detail::change_action(sig, &action, nullptr);
  }
  return true;
}

}  // namespace await_tree
