// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/http/detail/request.hpp>
#include <await_tree/http/detail/routes.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace await_tree::http::detail {

/// A request head (request line and fields) may be at most this long.
inline constexpr std::size_t max_request_head = 8192;

/// How long a connection drains the client's input after the response.
inline constexpr std::chrono::milliseconds linger_timeout{1000};

using strand = asio::strand<asio::io_context::executor_type>;

/// What every connection of a server shares, fixed when the server starts.
struct connection_settings {
  route_settings routes;
  std::chrono::milliseconds request_timeout;
  std::chrono::milliseconds response_timeout;
};

/// One client connection: read one request head, answer, close. Every
/// handler runs on the server's strand. A single timer bounds each phase, so
/// a client that sends slowly, reads slowly or goes silent is dropped.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(asio::ip::tcp::socket socket, std::shared_ptr<const connection_settings> settings,
             std::function<void(connection*)> on_closed)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        settings_(std::move(settings)),
        on_closed_(std::move(on_closed)) {}

  void start() {
    arm_timer(settings_->request_timeout);
    read_more();
  }

  /// Closes the socket; pending operations end with an error and the
  /// connection goes away with the last of them.
  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    on_closed_(this);
  }

 private:
  void arm_timer(std::chrono::milliseconds timeout) {
    if (closed_) return;
    const std::uint64_t armed = ++timer_generation_;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), armed](const asio::error_code& error) {
      // A wait that completed just before being re-armed must not close.
      if (!error && armed == self->timer_generation_) self->close();
    });
  }

  void read_more() {
    socket_.async_read_some(
        asio::buffer(chunk_),
        [self = shared_from_this()](const asio::error_code& error, std::size_t n) {
          // Also when close() came first (from stop()) with the result queued.
          if (error || self->closed_) return self->close();
          self->received_.append(self->chunk_.data(), n);
          self->on_received();
        });
  }

  void on_received() {
    const std::string_view received = received_;
    if (const auto end = head_end(received.substr(0, max_request_head + 4));
        end && *end <= max_request_head) {
      return answer(received.substr(0, *end));
    }
    if (received.size() >= max_request_head) {
      return reply(refused({status::payload_too_large, "request head over 8 KiB"}), false);
    }
    read_more();
  }

  void answer(std::string_view head_text) {
    auto parsed = parse_request_head(head_text);
    if (const auto* error = std::get_if<refusal>(&parsed)) return reply(refused(*error), false);
    const auto& head = std::get<request_head>(parsed);
    reply(route(head, settings_->routes), head.method == "HEAD");
  }

  void reply(const response& r, bool head_only) {
    outgoing_ = serialize(r, head_only);
    arm_timer(settings_->response_timeout);
    asio::async_write(socket_, asio::buffer(outgoing_),
                      [self = shared_from_this()](const asio::error_code& error, std::size_t) {
                        if (error || self->closed_) return self->close();
                        self->linger();
                      });
  }

  /// Ends the sending side, then reads and drops what the client still
  /// sends until it closes (for a second at most): closing a socket with
  /// unread input resets the connection, which could destroy the response
  /// before the client has read it.
  void linger() {
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    arm_timer(std::min(settings_->request_timeout, linger_timeout));
    drain();
  }

  void drain() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](
                                                      const asio::error_code& error, std::size_t) {
      if (error || self->closed_) return self->close();
      self->drain();
    });
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const connection_settings> settings_;
  std::function<void(connection*)> on_closed_;
  std::array<char, 4096> chunk_{};
  std::string received_;
  std::string outgoing_;
  std::uint64_t timer_generation_ = 0;
  bool closed_ = false;
};

}  // namespace await_tree::http::detail
