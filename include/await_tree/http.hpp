// SPDX-License-Identifier: Apache-2.0
#pragma once

// A read-only HTTP endpoint for the live trees (standalone Asio 1.22 or
// later; not part of <await_tree/await_tree.hpp>):
//
//   await_tree::http::server server(io_context, {.port = 8080});
//   // GET /            the live page      GET /tasks.txt, /tasks.json   the dumps
//   // GET /healthz     "ok"
//
// See README.md, "Live view over HTTP", for the endpoints, their query
// parameters and the limits that keep the server safe to leave on.

#include <await_tree/http/detail/server_state.hpp>
#include <await_tree/registry.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace await_tree::http {

struct server_options {
  /// Where to listen. Loopback by default: anything else exposes every
  /// task's keys and span names to whoever can reach the address.
  std::string address = "127.0.0.1";
  /// 0: any free port (server::port() tells which).
  std::uint16_t port = 0;
  /// The registry to serve; the global registry when empty.
  std::optional<registry> source{};
  /// When set, /tasks.txt and /tasks.json need `Authorization: Bearer <token>`.
  std::string bearer_token{};
  /// Connections over this many get a 503 and are closed at once.
  std::size_t max_connections = 64;
  /// A client has this long from connecting to the end of its request head.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  /// A client has this long to take the whole response.
  std::chrono::milliseconds response_timeout = std::chrono::seconds(30);
};

/// Serves the trees of `options.source` over HTTP. Every handler runs on one
/// strand of the io_context, so the server is safe on an io_context that
/// several threads run; a request's dump is made on that strand.
class server {
 public:
  /// Listens at once (throws std::system_error when the address cannot be
  /// bound) and serves on `io`, which the caller runs.
  server(asio::io_context& io, const server_options& options) { start(io, options); }

  /// For programs without Asio: serves on an io_context and a thread of the
  /// server's own.
  explicit server(const server_options& options) : own_io_(std::make_unique<asio::io_context>(1)) {
    start(*own_io_, options);
    own_thread_ = std::thread([io = own_io_.get()] { io->run(); });
  }

  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server() { stop(); }

  /// The port it listens on.
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  /// Closes the listener and every open connection. On the caller's
  /// io_context this is queued on the server's strand and happens when the
  /// io_context runs it; with a thread of its own, it has happened when
  /// stop() returns. Idempotent.
  void stop() {
    if (!state_) return;
    state_->stop();
    state_.reset();
    if (own_thread_.joinable()) own_thread_.join();
  }

 private:
  void start(asio::io_context& io, const server_options& options) {
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(options.address), options.port);
    auto settings = std::make_shared<const detail::connection_settings>(detail::connection_settings{
        .routes = {.source = options.source, .bearer_token = options.bearer_token},
        .request_timeout = options.request_timeout,
        .response_timeout = options.response_timeout});
    state_ = std::make_shared<detail::server_state>(io, endpoint, std::move(settings),
                                                    options.max_connections);
    port_ = state_->port();
    state_->start();
  }

  std::unique_ptr<asio::io_context> own_io_;
  std::shared_ptr<detail::server_state> state_;
  std::thread own_thread_;
  std::uint16_t port_ = 0;
};

}  // namespace await_tree::http
