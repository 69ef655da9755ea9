// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the HTTP tests share: a registry with a thousand tasks that run on a
// thread of their own while the tests hit the server, and a plain blocking
// HTTP client on loopback.

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace test {

/// Span names and keys that would run script if a page took them as markup.
inline constexpr std::string_view hostile_key = "<img src=x onerror=\"document.title='pwned'\">";
inline constexpr std::string_view hostile_span =
    "<script>document.title='pwned by span'</script>\"quoted\" \x01 \xff";

/// A registry of `count` tasks plus one with hostile names, running on a
/// thread of their own until destroyed: tasks `task N` with N % 10 == 0
/// tick every millisecond; the others wait (`wait for replica N % 7`, or in
/// a join of a fetch and a long-running lease).
class running_tasks {
 public:
  explicit running_tasks(int count) {
    for (int id = 0; id < count; ++id) {
      rt::spawn(ex_, reg_.register_task(fmt::format("task {}", id), fmt::format("task {}", id))
                         .instrument(run(id)));
    }
    rt::spawn(ex_, reg_.register_task(std::string(hostile_key),
                                      await_tree::span(std::string(hostile_span)))
                       .instrument(stuck(0)));
    runner_ = std::thread([this] {
      while (!stopping_) ex_.run_for(std::chrono::milliseconds(2));
      release_.set();
      ex_.run();
    });
    // Every task waits at its first await before anyone looks, however slowly
    // the runner thread got there.
    while (!all_waiting(static_cast<std::size_t>(count) + 1)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  running_tasks(const running_tasks&) = delete;
  running_tasks& operator=(const running_tasks&) = delete;
  ~running_tasks() {
    stopping_ = true;
    runner_.join();
  }

  [[nodiscard]] const await_tree::registry& registry() const noexcept { return reg_; }

 private:
  /// Whether `tasks` tasks are registered and each shows a node under its
  /// root (a ticking one may be between two ticks: then it is asked again).
  [[nodiscard]] bool all_waiting(std::size_t tasks) const {
    const auto trees = reg_.collect<std::string>();
    return trees.size() == tasks && std::all_of(trees.begin(), trees.end(), [](const auto& entry) {
             return entry.second.nodes().size() > 1;
           });
  }

  rt::task<> run(int id) {
    if (id % 10 == 0) {
      while (!stopping_)
        co_await await_tree::instrument(ex_.sleep(std::chrono::milliseconds(1)), "tick");
    } else {
      co_await stuck(id);
    }
  }

  rt::task<> stuck(int id) {
    if (id % 2 == 0) {
      co_await await_tree::instrument(release_.wait(), fmt::format("wait for replica {}", id % 7));
    } else {
      co_await await_tree::instrument(
          rt::when_all(await_tree::instrument(release_.wait(), "fetch rows"),
                       await_tree::instrument(release_.wait(),
                                              await_tree::span("refresh lease").long_running())),
          "query");
    }
  }

  // The nanosecond clock: the tasks' first awaits may all fall within one
  // tick of the coarse default, and then a group's durations would have no
  // spread to show (min equal to max).
  await_tree::registry reg_{
      {.long_running_threshold = std::chrono::milliseconds(500), .clock = &await_tree::steady_now}};
  rt::executor ex_;
  rt::event release_;
  std::atomic<bool> stopping_{false};
  std::thread runner_;
};

/// A response as received: its status code, raw head and body.
struct http_response {
  int status = 0;
  std::string head;
  std::string body;
  [[nodiscard]] bool has_header(std::string_view line) const {
    return head.find(fmt::format("\r\n{}\r\n", line)) != std::string::npos;
  }
};

inline http_response parse_response(const std::string& raw) {
  http_response r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end + 2);
  r.body = raw.substr(end + 4);
  return r;
}

/// A blocking client socket on loopback, closed when it goes.
class client_socket {
 public:
  explicit client_socket(std::uint16_t port)
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::system_error(error, std::generic_category(), "connect");
    }
  }
  client_socket(const client_socket&) = delete;
  client_socket& operator=(const client_socket&) = delete;
  ~client_socket() { ::close(fd_); }

  /// Sends what it can of `bytes`; false once the server has closed.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Reads until the server closes the connection (or resets it), or
  /// `bound` passes (a bound for a hung server, not a timing expectation);
  /// `closed` says whether it did close.
  std::string receive_all(bool* closed = nullptr,
                          std::chrono::milliseconds bound = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    std::string reply;
    std::array<char, 16384> chunk{};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd polled{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&polled, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (n <= 0) {
        if (closed != nullptr) *closed = true;
        return reply;
      }
      reply.append(chunk.data(), static_cast<std::size_t>(n));
    }
    if (closed != nullptr) *closed = false;
    return reply;
  }

 private:
  int fd_;
};

/// Sends `bytes` on a new connection and returns the raw reply.
inline std::string send_and_receive(std::uint16_t port, std::string_view bytes) {
  client_socket socket(port);
  socket.send(bytes);
  return socket.receive_all();
}

inline http_response get(std::uint16_t port, std::string_view target,
                         std::string_view extra_headers = "") {
  return parse_response(send_and_receive(
      port, fmt::format("GET {} HTTP/1.1\r\nHost: localhost\r\n{}\r\n", target, extra_headers)));
}

}  // namespace test
