// SPDX-License-Identifier: Apache-2.0
#pragma once

// Runs a program with its stdin, stdout and stderr on pipes: for the tests
// of what a process prints when it dies or receives a signal.

#include <array>
#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace test {

class child_process {
 public:
  enum class stream { out, err };

  /// Starts `args[0]` with arguments `args[1...]` and this environment.
  explicit child_process(const std::vector<std::string>& args) {
    std::array<int, 2> in{};
    std::array<int, 2> out{};
    std::array<int, 2> err{};
    if (::pipe2(in.data(), O_CLOEXEC) != 0 || ::pipe2(out.data(), O_CLOEXEC) != 0 ||
        ::pipe2(err.data(), O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    stdin_ = in[1];
    fds_ = {out[0], err[0]};
    if (error != 0) throw std::system_error(error, std::generic_category(), "posix_spawn");
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (status_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    close_stdin();
    for (int& fd : fds_) close_fd(fd);
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& out() const noexcept { return text_[0]; }
  [[nodiscard]] const std::string& err() const noexcept { return text_[1]; }

  /// Reads the child's output until `stream` holds `text` `times` times, the
  /// output ends, or a minute passes (a bound for a hung child, not a
  /// timing expectation). Returns whether the text came.
  bool wait_for(stream s, std::string_view text, std::size_t times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (count(text_[static_cast<std::size_t>(s)], text) < times) {
      if (!read_some(deadline)) return false;
    }
    return true;
  }

  void close_stdin() noexcept { close_fd(stdin_); }

  /// Reads the output to its end, waits for the child to exit, and returns
  /// its wait status.
  int finish() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (read_some(deadline)) {
    }
    close_stdin();
    if (status_ < 0 && ::waitpid(pid_, &status_, 0) != pid_) {
      throw std::system_error(errno, std::generic_category(), "waitpid");
    }
    return status_;
  }

  static std::size_t count(std::string_view haystack, std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string_view::npos;
         pos = haystack.find(needle, pos + needle.size())) {
      ++n;
    }
    return n;
  }

 private:
  static void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  /// Waits for output on either pipe and appends it; false once both have
  /// ended or the deadline has passed.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    std::array<pollfd, 2> polled{};
    for (std::size_t i = 0; i < 2; ++i) polled[i] = {fds_[i], POLLIN, 0};
    if (fds_[0] < 0 && fds_[1] < 0) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (::poll(polled.data(), polled.size(), static_cast<int>(left.count())) < 0) {
      return errno == EINTR;
    }
    for (std::size_t i = 0; i < 2; ++i) {
      if ((polled[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      std::array<char, 4096> chunk;
      const ssize_t n = ::read(fds_[i], chunk.data(), chunk.size());
      if (n > 0) {
        text_[i].append(chunk.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close_fd(fds_[i]);
      }
    }
    return true;
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  std::array<int, 2> fds_{-1, -1};  // stdout, stderr
  std::array<std::string, 2> text_;
  int status_ = -1;
};

}  // namespace test
