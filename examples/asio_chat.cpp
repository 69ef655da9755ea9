// SPDX-License-Identifier: Apache-2.0
//
// asio_chat: the await-trees of a chat server written the way Asio's own C++20
// chat server is.
//
// Each session has a reader and a writer, two coroutines spawned by function
// objects that hold the session (`[self = shared_from_this()]`), so that the
// session lives as long as either runs. A session first names its room
// ("lobby", "games"); a client that names none within the login timeout is
// dropped. Three loopback clients join, say hello and read what their room
// says; while they sit idle, the dump shows every reader waiting in
// `read line` and every writer in `wait for message`. Then a silent client is
// dropped by the timeout, the clients hang up, and the server shuts down.
//
// Usage: asio_chat [--fast]   (--fast: a login timeout of 0.5 s instead of 3 s)

#include <await_tree/asio.hpp>

#include "example.hpp"

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

namespace {

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using asio::use_awaitable;
using asio::ip::tcp;
using await_tree::asio::instrument;

class participant {
 public:
  virtual ~participant() = default;
  virtual void deliver(const std::string& line) = 0;
};

/// The members of one room and what was said there lately, which a new
/// member is told first.
class room {
 public:
  void join(const std::shared_ptr<participant>& p) {
    members_.insert(p);
    for (const auto& line : recent_) p->deliver(line);
  }
  void leave(const std::shared_ptr<participant>& p) { members_.erase(p); }
  void deliver(const std::string& line) {
    recent_.push_back(line);
    if (recent_.size() > max_recent) recent_.pop_front();
    for (const auto& p : members_) p->deliver(line);
  }

 private:
  static constexpr std::size_t max_recent = 100;
  std::set<std::shared_ptr<participant>> members_;
  std::deque<std::string> recent_;
};

/// What every session shares; all of it runs on the one io thread.
struct server_state {
  await_tree::registry& reg;
  std::chrono::nanoseconds login_timeout;
  std::map<std::string, room, std::less<>> rooms;
  int next_session = 0;
};

/// Reads one line (without its '\n') through `buffer`, which keeps what
/// came after it.
asio::awaitable<std::string> read_line(tcp::socket& socket, std::string& buffer) {
  const std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer, 1024),
                                                        "\n", use_awaitable);
  std::string line = buffer.substr(0, n - 1);
  buffer.erase(0, n);
  co_return line;
}

class session : public participant, public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, server_state& server)
      : socket_(std::move(socket)), wake_writer_(socket_.get_executor()), server_(server) {
    wake_writer_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  void start() {
    const std::string id = fmt::format("session {}", server_.next_session++);
    await_tree::asio::co_spawn(
        socket_.get_executor(), server_.reg, id + " reader", "reader",
        [self = shared_from_this()] { return self->reader(); }, asio::detached);
    await_tree::asio::co_spawn(
        socket_.get_executor(), server_.reg, id + " writer", "writer",
        [self = shared_from_this()] { return self->writer(); }, asio::detached);
  }

  void deliver(const std::string& line) override {
    pending_.push_back(line + "\n");
    wake_writer_.cancel_one();
  }

 private:
  /// Ends when a client has had all the time it gets to name its room.
  asio::awaitable<void> login_timeout() {
    asio::steady_timer timer(socket_.get_executor(), server_.login_timeout);
    co_await timer.async_wait(use_awaitable);
  }

  asio::awaitable<void> chat(room& r) {
    for (;;) {
      std::string line = co_await instrument(read_line(socket_, input_), "read line");
      r.deliver(std::move(line));
    }
  }

  asio::awaitable<void> reader() {
    try {
      auto login = co_await (instrument(read_line(socket_, input_), "read room name") ||
                             instrument(login_timeout(), "login timeout"));
      if (login.index() == 0) {
        const std::string name = std::get<0>(std::move(login));
        room& r = server_.rooms[name];
        r.join(shared_from_this());
        room_ = &r;
        co_await instrument(chat(r), await_tree::span(fmt::format("chat in {}", name)));
      }
    } catch (const std::system_error&) {  // the client hung up
    }
    stop();
  }

  asio::awaitable<void> writer() {
    try {
      while (socket_.is_open()) {
        if (pending_.empty()) {
          asio::error_code woken;  // deliver() and stop() cancel the wait
          co_await instrument(wake_writer_.async_wait(asio::redirect_error(use_awaitable, woken)),
                              "wait for message");
        } else {
          co_await instrument(
              asio::async_write(socket_, asio::buffer(pending_.front()), use_awaitable), "write");
          pending_.pop_front();
        }
      }
    } catch (const std::system_error&) {
      stop();
    }
  }

  void stop() {
    if (room_ != nullptr) room_->leave(shared_from_this());
    room_ = nullptr;
    socket_.close();
    wake_writer_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer wake_writer_;  // expires never: a wait ends when cancelled
  server_state& server_;
  room* room_ = nullptr;
  std::string input_;
  std::deque<std::string> pending_;
};

asio::awaitable<void> listen(tcp::acceptor& acceptor, server_state& server) {
  try {
    for (;;) {
      tcp::socket socket = co_await instrument(acceptor.async_accept(use_awaitable), "accept");
      std::make_shared<session>(std::move(socket), server)->start();
    }
  } catch (const std::system_error&) {  // the acceptor was closed
  }
}

// ---------------------------------------------------------------------------
// The clients (not traced: they stand for other programs).

struct client_progress {
  std::atomic<int> idle{0};
  std::atomic<bool> silent_one_dropped{false};
};

/// Joins `room_name`, says hello, reads the `room_size` hellos of its room,
/// then sits idle until `hang_up` is cancelled.
asio::awaitable<void> client(int id, std::string room_name, int room_size, tcp::endpoint server,
                             asio::steady_timer& hang_up, client_progress& progress) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, use_awaitable);
  const std::string hello = fmt::format("{}\nhello from client {}\n", room_name, id);
  co_await asio::async_write(socket, asio::buffer(hello), use_awaitable);
  std::string buffer;
  for (int heard = 0; heard < room_size; ++heard) co_await read_line(socket, buffer);
  ++progress.idle;
  asio::error_code hung_up;
  co_await hang_up.async_wait(asio::redirect_error(use_awaitable, hung_up));
}

/// Connects and says nothing: the server drops it at its login timeout.
asio::awaitable<void> silent_client(tcp::endpoint server, client_progress& progress) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, use_awaitable);
  std::array<char, 16> data{};
  asio::error_code closed;
  co_await socket.async_read_some(asio::buffer(data), asio::redirect_error(use_awaitable, closed));
  progress.silent_one_dropped = closed == asio::error::eof;
}

/// Whether `count` sessions sit idle: each reader in `read line`, each
/// writer in `wait for message`.
bool sessions_idle(const await_tree::registry& reg, int count) {
  int reading = 0;
  int waiting = 0;
  for (const auto& [key, tree] : reg.collect<std::string>()) {
    const auto& nodes = tree.nodes();
    const std::string_view innermost = nodes.back().span.name();
    if (key.ends_with(" reader") && innermost == "read line") ++reading;
    if (key.ends_with(" writer") && innermost == "wait for message") ++waiting;
  }
  return reading == count && waiting == count;
}

}  // namespace

int main(int argc, char** argv) {
  await_tree::registry reg;
  // Like Asio's chat server, all of it runs on one io thread; this thread
  // only snapshots the registry and posts.
  asio::io_context io;
  server_state server{reg, example::fast(argc, argv) ? 500ms : 3s, {}};
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const tcp::endpoint address = acceptor.local_endpoint();
  asio::steady_timer hang_up(io, std::chrono::steady_clock::time_point::max());
  client_progress progress;

  await_tree::asio::co_spawn(io, reg, std::string("chat server"),
                             await_tree::span(fmt::format("listen on port {}", address.port())),
                             listen(acceptor, server), asio::detached);
  const std::array<std::pair<const char*, int>, 3> clients{
      {{"lobby", 2}, {"games", 1}, {"lobby", 2}}};
  for (int id = 0; id < static_cast<int>(clients.size()); ++id) {
    const auto& [room_name, room_size] = clients[id];
    asio::co_spawn(io, client(id, room_name, room_size, address, hang_up, progress),
                   asio::detached);
  }
  std::thread io_thread([&io] { io.run(); });

  const int session_count = static_cast<int>(clients.size());
  const bool idle = example::within(
      10s, [&] { return progress.idle == session_count && sessions_idle(reg, session_count); });
  example::print_trees(reg, idle ? "while the sessions idle" : "the sessions never went idle");

  asio::co_spawn(io, silent_client(address, progress), asio::detached);
  const bool dropped = example::within(10s, [&] { return progress.silent_one_dropped.load(); });
  std::puts(dropped ? "the silent client was dropped at the login timeout"
                    : "the silent client was not dropped");

  asio::post(io, [&hang_up] { hang_up.cancel(); });  // the clients hang up
  const bool hung_up = example::within(10s, [&] { return reg.collect<std::string>().size() == 1; });
  asio::post(io, [&acceptor] { acceptor.close(); });  // and the server stops listening
  io_thread.join();
  example::print_trees(reg, "after shutdown");
  const bool clean = idle && dropped && hung_up && reg.collect_all().empty();
  std::puts(clean ? "shut down cleanly" : "did not shut down cleanly");
  return clean ? 0 : 1;
}
