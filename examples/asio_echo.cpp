// SPDX-License-Identifier: Apache-2.0
//
// asio_echo: the await-trees of an Asio TCP server.
//
// An echo server on 127.0.0.1 (an ephemeral port) runs one task per
// connection on an io_context served by two threads; three clients each say
// hello a few times, then stay connected without a word. The dump taken then
// shows every connection task waiting in `read`, which is what an idle
// connection looks like; the accept loop waits in `accept`. Then the clients
// hang up, the server shuts down, and the registry is empty again.
//
// Usage: asio_echo [--fast]   (--fast: pauses of 10 ms instead of 1 s)

#include <await_tree/asio.hpp>

#include "example.hpp"

#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using asio::use_awaitable;
using asio::ip::tcp;
using await_tree::asio::instrument;
using namespace std::chrono_literals;

constexpr int client_count = 3;
constexpr int hellos_per_client = 2;

asio::awaitable<void> echo(tcp::socket socket) {
  std::array<char, 1024> data{};
  try {
    for (;;) {
      const std::size_t n =
          co_await instrument(socket.async_read_some(asio::buffer(data), use_awaitable), "read");
      co_await instrument(asio::async_write(socket, asio::buffer(data, n), use_awaitable), "write");
    }
  } catch (const std::system_error&) {  // the client hung up
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  try {
    for (int id = 0;; ++id) {
      tcp::socket socket = co_await instrument(acceptor.async_accept(use_awaitable), "accept");
      const auto peer = socket.remote_endpoint();
      // One task per connection, in the global registry.
      await_tree::asio::co_spawn(co_await asio::this_coro::executor,
                                 fmt::format("connection {}", id),
                                 await_tree::span(fmt::format("echo to port {}", peer.port())),
                                 echo(std::move(socket)), asio::detached);
    }
  } catch (const std::system_error&) {  // the acceptor was closed
  }
}

/// Closed when the clients are to hang up. A concurrent channel, because
/// clients on both io threads wait on it while main closes it.
using hang_up_signal = asio::experimental::concurrent_channel<void(asio::error_code, bool)>;

/// Says hello a few times, then idles until `hang_up` is closed.
asio::awaitable<void> client(int id, tcp::endpoint server, std::chrono::nanoseconds pause,
                             hang_up_signal& hang_up, std::atomic<int>& idle) {
  const auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  co_await socket.async_connect(server, use_awaitable);
  asio::steady_timer timer(ex);
  for (int i = 0; i < hellos_per_client; ++i) {
    const std::string hello = fmt::format("hello {} from client {}\n", i, id);
    co_await asio::async_write(socket, asio::buffer(hello), use_awaitable);
    std::string reply(hello.size(), '\0');
    co_await asio::async_read(socket, asio::buffer(reply), use_awaitable);
    timer.expires_after(pause);
    co_await timer.async_wait(use_awaitable);
  }
  ++idle;
  try {
    co_await hang_up.async_receive(use_awaitable);
  } catch (const std::system_error&) {  // closed: time to hang up
  }
}

/// Whether every connection task is idle in `read`.
bool all_reading(const await_tree::registry& reg) {
  int reading = 0;
  for (const auto& [key, tree] : reg.collect<std::string>()) {
    const auto& nodes = tree.nodes();
    if (key.starts_with("connection") && nodes.size() == 2 && nodes[1].span.name() == "read") {
      ++reading;
    }
  }
  return reading == client_count;
}

}  // namespace

int main(int argc, char** argv) {
  const std::chrono::nanoseconds pause = example::second(argc, argv);
  await_tree::init_global_registry();
  const await_tree::registry& reg = *await_tree::global_registry();

  asio::io_context io;
  // The accept loop uses the acceptor and main closes it: a strand keeps the
  // two apart.
  const auto acceptor_strand = asio::make_strand(io);
  tcp::acceptor acceptor(acceptor_strand, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  hang_up_signal hang_up(io);
  std::atomic<int> idle{0};

  await_tree::asio::co_spawn(acceptor_strand, std::string("accept loop"), "echo server",
                             accept_loop(acceptor), asio::detached);
  for (int id = 0; id < client_count; ++id) {
    asio::co_spawn(io, client(id, acceptor.local_endpoint(), pause, hang_up, idle), asio::detached);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&io] { io.run(); });

  const bool quiet = example::within(10s, [&] { return idle == client_count && all_reading(reg); });
  example::print_trees(reg, quiet ? "while the connections idle" : "connections never went idle");

  hang_up.close();  // the clients hang up
  const bool hung_up = example::within(10s, [&] { return reg.collect<std::string>().size() == 1; });
  asio::post(acceptor_strand, [&] { acceptor.close(); });  // and the server stops accepting
  for (auto& t : threads) t.join();
  example::print_trees(reg, "after shutdown");
  const bool clean = quiet && hung_up && reg.collect_all().empty();
  std::puts(clean ? "shut down cleanly" : "did not shut down cleanly");
  return clean ? 0 : 1;
}
