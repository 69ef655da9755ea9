// SPDX-License-Identifier: Apache-2.0
//
// live_view: the hang_report service behind the HTTP live view.
//
// 1,000 simulated connections on the examples' runtime, in real time: most
// idle in a long-running read, some stuck in a query on replica 2, a few
// stuck writing a response. An await_tree::http::server on a thread of
// its own serves their trees: open the printed URL in a browser, or curl the
// dumps. Spans older than 2 s (not long-running) are flagged `!!!`.
//
// Usage: live_view [--fast] [PORT]
//   --fast   run 1 s, fetch the grouped text dump over HTTP, print it, exit
//   PORT     where to listen on 127.0.0.1 (default: any free port)

#include <await_tree/await_tree.hpp>
#include <await_tree/http.hpp>

#include "connection_service.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono_literals;

/// GET `target` from the server, as a client would: the whole response.
std::string http_get(std::uint16_t port, std::string_view target) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket,
              asio::buffer(fmt::format("GET {} HTTP/1.1\r\nHost: localhost\r\n\r\n", target)));
  std::string response;
  asio::error_code end;
  asio::read(socket, asio::dynamic_buffer(response), end);
  return response;
}

}  // namespace

int main(int argc, char** argv) {
  const bool fast = argc > 1 && std::string_view(argv[1]) == "--fast";
  const int port_argument = argc > 1 && !fast ? std::atoi(argv[1]) : 0;
  await_tree::init_global_registry({.long_running_threshold = 2s});

  rt::executor ex;
  rt::event never;
  example::connection_service s{ex, never, 500ms};
  for (int id = 0; id < 1000; ++id) s.open(*await_tree::global_registry(), id);

  // Loopback only; serves the global registry on a thread of its own.
  await_tree::http::server server({.port = static_cast<std::uint16_t>(port_argument)});
  std::printf("live view: http://127.0.0.1:%u/\n", server.port());
  std::printf("  curl 'http://127.0.0.1:%u/tasks.txt?grouped=1&mask_digits=1'\n", server.port());
  std::printf("  curl 'http://127.0.0.1:%u/tasks.json?order=longest_waiting_first&limit=5'\n",
              server.port());
  std::fflush(stdout);

  if (!fast) {
    ex.run_until(ex.now() + 24h);  // until interrupted
    return 0;
  }
  ex.run_for(1s);
  std::puts("--- GET /tasks.txt?grouped=1&mask_digits=1&limit=2 ---");
  std::fputs(http_get(server.port(), "/tasks.txt?grouped=1&mask_digits=1&limit=2").c_str(), stdout);
  never.set();
  ex.run();
  return 0;
}
