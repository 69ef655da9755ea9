// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/http/detail/connection.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace await_tree::http::detail {

/// The listener and the open connections, used on one strand only. Owned
/// jointly by the server and its pending operations, so that handlers still
/// queued when the server is destroyed find it alive.
class server_state : public std::enable_shared_from_this<server_state> {
 public:
  server_state(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
               std::shared_ptr<const connection_settings> settings, std::size_t max_connections)
      : strand_(asio::make_strand(io)),
        acceptor_(strand_, endpoint),
        retry_timer_(strand_),
        settings_(std::move(settings)),
        max_connections_(max_connections) {}

  [[nodiscard]] unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->accept(); });
  }

  /// Closes the listener and every connection, on the strand.
  void stop() {
    asio::post(strand_, [self = shared_from_this()] { self->close_all(); });
  }

 private:
  void accept() {
    acceptor_.async_accept(strand_, [self = shared_from_this()](const asio::error_code& error,
                                                                asio::ip::tcp::socket socket) {
      if (!self->acceptor_.is_open()) return;
      if (error) return self->accept_later();
      self->admit(std::move(socket));
      self->accept();
    });
  }

  /// After a failed accept (out of file descriptors, say), a pause rather
  /// than a loop that fails as fast as it can.
  void accept_later() {
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
      if (!error && self->acceptor_.is_open()) self->accept();
    });
  }

  void admit(asio::ip::tcp::socket socket) {
    if (connections_.size() >= max_connections_) return turn_away(socket);
    std::weak_ptr<server_state> weak_self = weak_from_this();
    auto c =
        std::make_shared<connection>(std::move(socket), settings_, [weak_self](connection* closed) {
          if (auto self = weak_self.lock()) {
            self->connections_.erase(closed);
          }
        });
    connections_.emplace(c.get(), c);
    c->start();
  }

  /// Over the limit: a 503 if the socket takes it at once, then closed.
  static void turn_away(asio::ip::tcp::socket& socket) {
    const std::string busy =
        serialize(refused({status::service_unavailable, "too many connections"}), false);
    asio::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(busy), ignored);
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  void close_all() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    // close() erases the entry through on_closed: iterate over a copy.
    const auto open = connections_;
    for (const auto& [raw, weak] : open) {
      if (auto c = weak.lock()) c->close();
    }
    connections_.clear();
  }

  strand strand_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<const connection_settings> settings_;
  std::size_t max_connections_;
  std::unordered_map<connection*, std::weak_ptr<connection>> connections_;
};

}  // namespace await_tree::http::detail
