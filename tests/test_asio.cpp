// SPDX-License-Identifier: Apache-2.0
// The Asio integration against real Asio: io_contexts run by several threads,
// timers, channels, awaitable operators and loopback TCP. Trees are checked
// exactly at quiescent points: every task waits at a gate (below) that counts
// its waiters, and a node exists before its await starts waiting. Assertions
// stay on the test thread.
//
// Compiled twice (tests/CMakeLists.txt): against standalone Asio, and with
// AWAIT_TREE_TEST_BOOST_ASIO against Boost.Asio. `net` is the Asio under test
// and `tracing` the integration's namespace for it.

#if defined(AWAIT_TREE_TEST_BOOST_ASIO)
#include <await_tree/boost_asio.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/experimental/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

namespace net = boost::asio;
namespace tracing = await_tree::boost_asio;
using error_code = boost::system::error_code;
using system_error = boost::system::system_error;
#else
#include <await_tree/asio.hpp>

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>

namespace net = ::asio;
namespace tracing = await_tree::asio;
using error_code = asio::error_code;
using system_error = std::system_error;
#endif

#include "snapshotter.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace test;
using namespace net::experimental::awaitable_operators;
using net::use_awaitable;
using tracing::instrument;

namespace {

/// Runs an io_context on `count` threads. finish() lets them return once
/// the work is done, within a bound; past it the io_context is stopped.
class io_threads {
 public:
  io_threads(net::io_context& io, int count) : io_(io), work_(net::make_work_guard(io)) {
    for (int i = 0; i < count; ++i) threads_.emplace_back([&io] { io.run(); });
  }
  io_threads(const io_threads&) = delete;
  io_threads& operator=(const io_threads&) = delete;
  ~io_threads() { finish(); }

  /// Whether all the work ended by itself.
  bool finish(std::chrono::seconds limit = std::chrono::seconds(20)) {
    work_.reset();
    const bool drained = eventually([this] { return io_.stopped(); }, limit);
    if (!drained) io_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    return drained;
  }

 private:
  net::io_context& io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

/// Holds back every coroutine that waits on it until it is opened (for
/// good), and counts them: once `waiting()` says they are all there, their
/// trees are quiescent.
class gate {
 public:
  /// How open() resumes the waiters: posted to their executors, or
  /// dispatched there (inline when opened from a handler of the same
  /// io_context, as a channel may).
  enum class release_by { post, dispatch };

  explicit gate(release_by how = release_by::post) : how_(how) {}

  template <class Token>
  auto async_wait(Token&& token) {
    return net::async_initiate<Token, void()>(
        [this](auto handler) { this->add(std::move(handler)); }, token);
  }
  net::awaitable<void> wait() { return async_wait(use_awaitable); }

  void open() {
    std::vector<std::unique_ptr<waiter>> released;
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
      released.swap(waiters_);
    }
    for (auto& w : released) w->release(how_);
  }
  [[nodiscard]] std::size_t waiting() const {
    const std::lock_guard lock(mutex_);
    return waiters_.size();
  }

 private:
  struct waiter {
    virtual ~waiter() = default;
    virtual void release(release_by how) = 0;
  };
  template <class Handler>
  struct waiter_for final : waiter {
    explicit waiter_for(Handler h) : handler(std::move(h)) {}
    void release(release_by how) override {
      const auto ex = net::get_associated_executor(handler);
      if (how == release_by::dispatch) {
        net::dispatch(ex, std::move(handler));
      } else {
        net::post(ex, std::move(handler));
      }
    }
    Handler handler;
  };

  template <class Handler>
  void add(Handler handler) {
    auto w = std::make_unique<waiter_for<Handler>>(std::move(handler));
    {
      const std::lock_guard lock(mutex_);
      if (!open_) {
        waiters_.push_back(std::move(w));
        return;
      }
    }
    w->release(how_);
  }

  release_by how_;
  mutable std::mutex mutex_;
  bool open_ = false;
  std::vector<std::unique_ptr<waiter>> waiters_;
};

/// A plain await that really suspends: back through the executor.
net::awaitable<void> hop() { co_await net::post(co_await net::this_coro::executor, use_awaitable); }

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  co_await timer.async_wait(use_awaitable);
}

/// Waits until no thread runs any task of `reg`: the `<== current` markers
/// are gone. A task whose node was just added is still running for a moment
/// (initiating the operation it waits for); a marker that never goes away is
/// a running count the library failed to take back.
bool settles(const await_tree::registry& reg) {
  return eventually([&reg] {
    for (const auto& [key, t] : reg.collect_all()) {
      for (const auto& n : t.nodes()) {
        if (n.is_current) return false;
      }
    }
    return true;
  });
}

template <class Key>
bool has_node(const await_tree::registry& reg, const Key& key, std::string_view name) {
  const auto t = reg.get(key);
  if (!t) return false;
  for (const auto& n : t->nodes()) {
    if (n.span.name() == name) return true;
  }
  return false;
}

/// Spawns under a key of its own, reporting any exception.
template <class T>
void spawn(net::io_context& io, await_tree::registry& reg, std::string key, const char* root,
           net::awaitable<T> body, std::atomic<int>& failures) {
  tracing::co_spawn(io, reg, std::move(key), await_tree::span(std::string(root)), std::move(body),
                    [&failures](std::exception_ptr e, auto&&...) {
                      if (e) ++failures;
                    });
}

// ---------------------------------------------------------------------------

net::awaitable<void> inner(gate& g) {
  co_await hop();
  co_await sleep_for(1ms);  // a plain nested call that suspends on a timer
  co_await instrument(g.wait(), "wait at the gate");
}

net::awaitable<void> outer(gate& g) {
  co_await hop();
  co_await instrument(sleep_for(1ms), "short sleep");
  co_await hop();
  co_await instrument(inner(g), "inner");
}

net::awaitable<void> nested_task(gate& g) {
  co_await hop();
  co_await instrument(outer(g), "outer");
}

TEST_CASE("plain awaits between instrumented ones keep each task's position", "[asio]") {
  constexpr int task_count = 16;
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate g;
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  for (int i = 0; i < task_count; ++i) {
    spawn(io, reg, fmt::format("task {}", i), "task", nested_task(g), failures);
  }

  REQUIRE(eventually([&] { return g.waiting() == task_count; }));
  CHECK(settles(reg));
  for (int i = 0; i < task_count; ++i) {
    CHECK(text_of(reg, fmt::format("task {}", i)) ==
          "task [0ns]\n"
          "  outer [0ns]\n"
          "    inner [0ns]\n"
          "      wait at the gate [0ns]\n");
  }
  g.open();
  CHECK(threads.finish());
  CHECK(failures == 0);
  CHECK(reg.collect_all().empty());
}

// ---------------------------------------------------------------------------

/// Its first instrumented await comes after it has suspended: not shown (the
/// library cannot tell it from a coroutine of no task resumed inline).
net::awaitable<void> late_branch(gate& g) {
  co_await hop();
  co_await instrument(g.wait(), "late");
}

net::awaitable<void> joins(gate& g, gate& after) {
  co_await hop();
  co_await instrument(
      instrument(g.wait(), "left") &&
          instrument(instrument(g.wait(), "deep a") && instrument(g.wait(), "deep b"), "right") &&
          late_branch(g),
      "join");
  co_await instrument(after.wait(), "after the join");
}

TEST_CASE("&& shows its branches as siblings while they run", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate g;
  gate after;
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  spawn(io, reg, "joins", "task", joins(g, after), failures);

  REQUIRE(eventually([&] { return g.waiting() == 4; }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("joins")) ==
        "task [0ns]\n"
        "  join [0ns]\n"
        "    left [0ns]\n"
        "    right [0ns]\n"
        "      deep a [0ns]\n"
        "      deep b [0ns]\n");
  g.open();
  REQUIRE(eventually([&] { return after.waiting() == 1; }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("joins")) ==
        "task [0ns]\n"
        "  after the join [0ns]\n");
  after.open();
  CHECK(threads.finish());
  CHECK(failures == 0);
}

// ---------------------------------------------------------------------------

net::awaitable<void> races(gate& timeout, gate& after, std::atomic<int>& winner) {
  const auto result = co_await instrument(
      instrument(sleep_for(1h), "slow query") || instrument(timeout.wait(), "timeout"), "race");
  winner = static_cast<int>(result.index());
  co_await instrument(after.wait(), "after the race");
}

TEST_CASE("|| removes the cancelled loser's nodes", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate timeout;
  gate after;
  std::atomic<int> winner{-1};
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  spawn(io, reg, "races", "task", races(timeout, after, winner), failures);

  REQUIRE(eventually([&] { return timeout.waiting() == 1; }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("races")) ==
        "task [0ns]\n"
        "  race [0ns]\n"
        "    slow query [0ns]\n"
        "    timeout [0ns]\n");
  timeout.open();
  REQUIRE(eventually([&] { return after.waiting() == 1; }));
  CHECK(settles(reg));
  CHECK(winner == 1);
  CHECK(text_of(reg, std::string("races")) ==
        "task [0ns]\n"
        "  after the race [0ns]\n");
  after.open();
  CHECK(threads.finish());
  CHECK(failures == 0);
}

// ---------------------------------------------------------------------------

net::awaitable<void> record_tree(const await_tree::registry& reg, std::string& seen) {
  seen = text_of(reg, std::string("waker"));
  co_return;
}

/// Spawned as no task; resumed inline inside a handler of the waker's task.
net::awaitable<void> untraced(gate& e, const await_tree::registry& reg, std::string& seen) {
  co_await e.wait();
  co_await instrument(record_tree(reg, seen), "untraced after wake");
}

net::awaitable<void> waker(gate& e) {
  co_await instrument(hop(), "waker hops");
  e.open();  // resumes the untraced coroutine inline, in this handler
  co_await hop();
}

TEST_CASE("a coroutine of no task resumed inline by a task's handler is not in its tree",
          "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate e(gate::release_by::dispatch);
  std::string seen;
  std::atomic<int> failures{0};
  net::co_spawn(io, untraced(e, reg, seen), net::detached);
  spawn(io, reg, "waker", "waker", waker(e), failures);
  io.run();
  CHECK(seen.starts_with("waker [0ns]"));  // seen from inside the waker's handler
  CHECK(seen.find("untraced") == std::string::npos);
  CHECK(failures == 0);
}

/// A branch spawned with the task's executor and left to run: its launcher
/// has moved on to another await when its first node opens.
net::awaitable<void> detached_branch(gate& g) {
  co_await hop();
  co_await instrument(g.wait(), "branch waits");
}

net::awaitable<void> spawns_detached(gate& g, gate& after) {
  net::co_spawn(co_await net::this_coro::executor, detached_branch(g), net::detached);
  co_await instrument(after.wait(), "parent waits");
}

TEST_CASE("a detached branch whose first node comes late is never under its launcher's await",
          "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate g;
  gate after;
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  spawn(io, reg, "parent", "task", spawns_detached(g, after), failures);
  REQUIRE(eventually([&] { return g.waiting() == 1 && after.waiting() == 1; }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("parent")) == "task [0ns]\n  parent waits [0ns]\n");
  g.open();
  after.open();
  CHECK(threads.finish());
  CHECK(failures == 0);
}

// ---------------------------------------------------------------------------

// Tasks on several threads share it: the channel must be the thread-safe one.
using int_channel = net::experimental::concurrent_channel<void(error_code, int)>;

net::awaitable<void> producer(int_channel& ch, gate& go) {
  co_await instrument(go.wait(), "wait for the go");
  for (int i = 1; i <= 3; ++i) {
    co_await instrument(ch.async_send(error_code{}, i, use_awaitable),
                        await_tree::span(fmt::format("send item {}", i)));
  }
}

net::awaitable<void> consumer(int_channel& ch, gate& elsewhere, std::atomic<int>& sum) {
  sum += co_await instrument(ch.async_receive(use_awaitable), "recv from producer");
  co_await instrument(elsewhere.wait(), "busy elsewhere");
  for (int i = 0; i < 2; ++i) sum += co_await instrument(ch.async_receive(use_awaitable), "recv");
}

TEST_CASE("tasks blocked on a channel show it", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  int_channel ch(io, 1);
  gate go;
  gate elsewhere;
  std::atomic<int> sum{0};
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  spawn(io, reg, "consumer", "consumer", consumer(ch, elsewhere, sum), failures);
  spawn(io, reg, "producer", "producer", producer(ch, go), failures);

  // The channel is empty: the consumer waits to receive.
  REQUIRE(eventually([&] {
    return go.waiting() == 1 && has_node(reg, std::string("consumer"), "recv from producer");
  }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("consumer")) ==
        "consumer [0ns]\n"
        "  recv from producer [0ns]\n");
  go.open();

  // Item 1 was taken, item 2 fills the channel, item 3 waits for room.
  REQUIRE(eventually([&] {
    return elsewhere.waiting() == 1 && has_node(reg, std::string("producer"), "send item 3");
  }));
  CHECK(settles(reg));
  CHECK(text_of(reg, std::string("producer")) ==
        "producer [0ns]\n"
        "  send item 3 [0ns]\n");
  CHECK(text_of(reg, std::string("consumer")) ==
        "consumer [0ns]\n"
        "  busy elsewhere [0ns]\n");
  elsewhere.open();
  CHECK(threads.finish());
  CHECK(sum == 6);
  CHECK(failures == 0);
  CHECK(reg.collect_all().empty());
}

// ---------------------------------------------------------------------------

using net::ip::tcp;

net::awaitable<void> echo(tcp::socket socket) {
  std::array<char, 256> data{};
  try {
    for (;;) {
      const std::size_t n =
          co_await instrument(socket.async_read_some(net::buffer(data), use_awaitable), "read");
      co_await instrument(net::async_write(socket, net::buffer(data, n), use_awaitable), "write");
    }
  } catch (const system_error&) {  // the client closed the connection
  }
}

net::awaitable<void> accept(tcp::acceptor& acceptor, await_tree::registry& reg, int count) {
  for (int id = 0; id < count; ++id) {
    tcp::socket socket = co_await instrument(acceptor.async_accept(use_awaitable), "accept");
    tracing::co_spawn(co_await net::this_coro::executor, reg, fmt::format("connection {}", id),
                      "echo", echo(std::move(socket)), net::detached);
  }
}

/// Says hello, reads the echo, then stays idle until `bye` opens.
net::awaitable<void> client(tcp::endpoint server, gate& bye, std::atomic<int>& echoed) {
  tcp::socket socket(co_await net::this_coro::executor);
  co_await socket.async_connect(server, use_awaitable);
  const std::string hello = "hello";
  co_await net::async_write(socket, net::buffer(hello), use_awaitable);
  std::string reply(hello.size(), '\0');
  co_await net::async_read(socket, net::buffer(reply), use_awaitable);
  if (reply == hello) ++echoed;
  co_await bye.wait();
}

TEST_CASE("a TCP echo server over loopback: idle connections wait in read", "[asio][tcp]") {
  constexpr int connection_count = 3;
  net::io_context io;
  await_tree::registry reg = manual_registry();
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  gate bye;
  std::atomic<int> echoed{0};
  std::atomic<int> failures{0};
  io_threads threads(io, 2);
  spawn(io, reg, "acceptor", "accept loop", accept(acceptor, reg, connection_count), failures);
  for (int i = 0; i < connection_count; ++i) {
    net::co_spawn(io, client(acceptor.local_endpoint(), bye, echoed), net::detached);
  }

  REQUIRE(eventually([&] {
    if (echoed != connection_count || bye.waiting() != connection_count) return false;
    // The accept loop ends once it accepted all it was asked to, possibly
    // after the last connection's task reached its read.
    if (reg.get(std::string("acceptor"))) return false;
    for (int id = 0; id < connection_count; ++id) {
      if (!has_node(reg, fmt::format("connection {}", id), "read")) return false;
    }
    return true;
  }));
  CHECK(settles(reg));
  for (int id = 0; id < connection_count; ++id) {
    CHECK(text_of(reg, fmt::format("connection {}", id)) ==
          "echo [0ns]\n"
          "  read [0ns]\n");
  }
  bye.open();  // the clients close: every echo task ends on end of file
  CHECK(threads.finish());
  CHECK(failures == 0);
  CHECK(reg.collect_all().empty());
}

// ---------------------------------------------------------------------------
// Many tasks on three threads doing every kind of await in a loop, while
// another thread snapshots them all: every snapshot must be well formed and
// hold only the task's own nodes, each under the parent it belongs under.

net::awaitable<void> branch(int id, std::chrono::microseconds pause) {
  co_await sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(pause));
  co_await instrument(hop(), await_tree::span(fmt::format("branch hop {}", id)));
}

net::awaitable<void> step(int id, int round) {
  co_await hop();
  co_await instrument(sleep_for(std::chrono::milliseconds(round % 2)),
                      await_tree::span(fmt::format("inner {}", id)));
  co_await hop();
}

net::awaitable<void> busy_task(int id, int rounds, gate& park) {
  int_channel self(co_await net::this_coro::executor, 1);
  for (int round = 0; round < rounds; ++round) {
    co_await hop();
    co_await instrument(step(id, round), await_tree::span(fmt::format("outer {}", id)));
    co_await instrument(instrument(branch(id, std::chrono::microseconds(round % 3 * 500)),
                                   await_tree::span(fmt::format("left {}", id))) &&
                            instrument(branch(id, std::chrono::microseconds(round % 2 * 500)),
                                       await_tree::span(fmt::format("right {}", id))),
                        await_tree::span(fmt::format("join {}", id)));
    co_await instrument(self.async_send(error_code{}, round, use_awaitable),
                        await_tree::span(fmt::format("send {}", id)));
    co_await instrument(self.async_receive(use_awaitable),
                        await_tree::span(fmt::format("recv {}", id)));
  }
  co_await instrument(park.wait(), await_tree::span(fmt::format("parked {}", id)));
}

/// The parent each node of the busy tasks must have (by name, without the
/// task id), the root being "task".
std::string_view expected_parent(std::string_view kind) {
  if (kind == "inner") return "outer";
  if (kind == "left" || kind == "right") return "join";
  if (kind == "branch hop") return "left|right";
  return "task";
}

/// Whether every node of a busy task's snapshot is its own (named after its
/// key) and sits under the parent it belongs under.
bool belongs(const await_tree::any_key& key, const await_tree::tree& t) {
  const std::string suffix = " " + key.to_string();
  std::vector<std::string> path;  // the kinds of the nodes above, by depth
  for (const auto& n : t.nodes()) {
    const std::string_view name = n.span.name();
    if (n.is_detached_root) return false;
    if (n.depth == 0) {
      if (name != "task") return false;
      path.assign(1, "task");
      continue;
    }
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) return false;
    const std::string kind(name.substr(0, name.size() - suffix.size()));
    path.resize(n.depth);
    const std::string_view parent = expected_parent(kind);
    if (parent.find(path.back()) == std::string_view::npos) return false;
    path.push_back(kind);
  }
  return true;
}

TEST_CASE("many busy tasks on three threads, snapshotted all along", "[asio][stress]") {
  constexpr int task_count = 24;
  constexpr int rounds = 200;
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate park;
  std::atomic<int> failures{0};
  snapshotter watcher(reg, belongs);
  io_threads threads(io, 3);
  for (int id = 0; id < task_count; ++id) {
    tracing::co_spawn(io, reg, id, "task", busy_task(id, rounds, park),
                      [&failures](std::exception_ptr e) {
                        if (e) ++failures;
                      });
  }

  REQUIRE(eventually([&] { return park.waiting() == task_count; }));
  CHECK(settles(reg));
  for (int id = 0; id < task_count; ++id) {
    CHECK(text_of(reg, id) == fmt::format("task [0ns]\n  parked {} [0ns]\n", id));
  }
  park.open();
  CHECK(threads.finish());
  watcher.stop();
  CHECK(failures == 0);
  CHECK(watcher.snapshots() > 0);
  WARN(watcher.snapshots() << " snapshots");
  CHECK(watcher.malformed() == 0);
  CHECK(reg.collect_all().empty());
}

// ---------------------------------------------------------------------------

net::awaitable<std::string> my_own_tree() {
  const auto t = await_tree::current_tree();
  co_return t ? t->to_string() : std::string("<none>");
}

net::awaitable<std::string> looks_at_itself() {
  co_await hop();
  co_return co_await instrument(my_own_tree(), "looking");
}

TEST_CASE("current_tree() names the running task and marks where it runs", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  std::string seen;
  tracing::co_spawn(io, reg, 1, "task", looks_at_itself(),
                    [&seen](std::exception_ptr, std::string s) { seen = std::move(s); });
  io.run();
  CHECK(seen ==
        "task [0ns]\n"
        "  looking [0ns]  <== current\n");
}

/// Whether the running task's executor is its io_context's, wrapped by the
/// integration (and type-erased by Asio).
net::awaitable<bool> runs_on_task_executor() {
  const auto ex = co_await net::this_coro::executor;
  co_return ex.target<tracing::task_executor<net::io_context::executor_type>>() != nullptr;
}

TEST_CASE("a task runs on a task_executor around its io_context's executor", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  bool traced = false;
  tracing::co_spawn(io, reg, 1, "task", runs_on_task_executor(),
                    [&traced](std::exception_ptr, bool t) { traced = t; });
  io.run();
  CHECK(traced);
}

// ---------------------------------------------------------------------------

net::awaitable<int> fails() {
  co_await hop();
  throw std::runtime_error("broken");
}

net::awaitable<int> propagates() { co_return co_await instrument(fails(), "fails"); }

TEST_CASE("an exception leaves through the node and reaches the completion token", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  std::string error;
  tracing::co_spawn(io, reg, 1, "task", propagates(), [&error](std::exception_ptr e, int) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::runtime_error& ex) {
      error = ex.what();
    }
  });
  io.run();
  CHECK(error == "broken");
  CHECK(reg.collect_all().empty());
}

/// How many nodes of this task's tree are marked current, seen from its own
/// running code.
std::size_t current_markers() {
  const auto t = await_tree::current_tree();
  REQUIRE(t);
  return static_cast<std::size_t>(std::count_if(t->nodes().begin(), t->nodes().end(),
                                                [](const auto& n) { return n.is_current; }));
}

struct marker_counts {
  std::vector<std::size_t> at_start;   // as a branch starts
  std::vector<std::size_t> after_hop;  // in a handler of its own
};

net::awaitable<int> counts_markers(marker_counts& seen) {
  seen.at_start.push_back(current_markers());
  co_await hop();
  seen.after_hop.push_back(current_markers());
  co_return 0;
}

net::awaitable<void> joins_that_count(marker_counts& seen) {
  co_await instrument(
      instrument(counts_markers(seen), "a") && instrument(counts_markers(seen), "b"), "both");
  co_await instrument(
      instrument(counts_markers(seen), "c") || instrument(counts_markers(seen), "d"), "either");
  // A parallel group's branches start in handlers of their own.
  const auto ex = co_await net::this_coro::executor;
  const auto branch = [&](await_tree::span name) {
    return net::co_spawn(ex, instrument(counts_markers(seen), std::move(name)),
                         net::experimental::deferred);
  };
  co_await instrument(net::experimental::make_parallel_group(branch("e"), branch("f"))
                          .async_wait(net::experimental::wait_for_all(), use_awaitable),
                      "group");
}

TEST_CASE("one thread running a task shows exactly one current marker", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  marker_counts seen;
  tracing::co_spawn(io, reg, 1, "task", joins_that_count(seen), net::detached);
  io.run();
  REQUIRE(seen.at_start.size() == 6);
  for (const std::size_t markers : seen.at_start) CHECK(markers == 1);
  // After a plain await the handler's node is known from the next
  // instrumented await on; until then the task's main position is marked.
  REQUIRE(seen.after_hop.size() >= 3);
  for (const std::size_t markers : seen.after_hop) CHECK(markers == 1);
}

net::awaitable<int> answer() {
  co_await hop();
  co_return 42;
}

net::awaitable<int> instrumented_answer() { co_return co_await instrument(answer(), "answer"); }

TEST_CASE("outside any task, instrument only forwards", "[asio]") {
  net::io_context io;
  int result = 0;
  net::co_spawn(io, instrumented_answer(), [&result](std::exception_ptr, int r) { result = r; });
  io.run();
  CHECK(result == 42);
}

TEST_CASE("the other ways to spawn: a root of one's own, the global registry", "[asio]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate g;
  tracing::co_spawn(io, reg.register_anonymous("anonymous"), instrument(g.wait(), "waits"),
                    net::detached);
  tracing::co_spawn(io.get_executor(), std::string("global task"), "global",
                    instrument(g.wait(), "waits too"), net::detached);
  tracing::co_spawn(io, reg, "listener", "listen", instrument(g.wait(), "listens"), net::detached);
  while (g.waiting() < 3 && io.run_one() > 0) {
  }
  REQUIRE(g.waiting() == 3);
  // A string literal key is a string key.
  const auto listener = reg.get(std::string("listener"));
  REQUIRE(listener);
  CHECK(listener->to_string().find("\n  listens [") != std::string::npos);
  REQUIRE(reg.collect<std::string>().size() == 1);
  CHECK(reg.collect<std::string>()[0].first == "listener");
  const auto anonymous = reg.collect_anonymous();
  REQUIRE(anonymous.size() == 1);
  CHECK(anonymous[0].to_string().find("anonymous [") == 0);
  CHECK(anonymous[0].to_string().find("\n  waits [") != std::string::npos);
  REQUIRE(await_tree::global_registry() != nullptr);
  const auto global = await_tree::global_registry()->get(std::string("global task"));
  REQUIRE(global);
  CHECK(global->to_string().find("\n  waits too [") != std::string::npos);
  g.open();
  io.run();
  CHECK(reg.collect_all().empty());
  CHECK(!await_tree::global_registry()->get(std::string("global task")));
}

// ---------------------------------------------------------------------------

namespace {

/// A session of the kind Asio's chat server keeps alive from the lambda it
/// spawns its coroutines with, and nothing else.
struct session : std::enable_shared_from_this<session> {
  gate& input;
  std::string name = "session 7";

  explicit session(gate& g) : input(g) {}
  net::awaitable<std::size_t> reader() {
    co_await instrument(input.wait(), "read line");
    co_return name.size();
  }
};

}  // namespace

TEST_CASE("a function object spawns a task and lives until it completes", "[asio][lifetime]") {
  net::io_context io;
  await_tree::registry reg = manual_registry();
  gate g;
  std::weak_ptr<session> watch;
  std::size_t read = 0;
  {
    const auto s = std::make_shared<session>(g);
    watch = s;
    tracing::co_spawn(
        io, reg, 7, "reader", [self = s->shared_from_this()] { return self->reader(); },
        [&read](std::exception_ptr, std::size_t n) { read = n; });
    tracing::co_spawn(
        io, reg.register_anonymous("anonymous reader"), [s] { return s->reader(); }, net::detached);
  }
  while (g.waiting() < 2 && io.run_one() > 0) {
  }
  REQUIRE(g.waiting() == 2);
  CHECK_FALSE(watch.expired());  // only the lambdas hold the session
  const auto t = reg.get(7);
  REQUIRE(t);
  CHECK(t->to_string().find("reader [") == 0);
  CHECK(t->to_string().find("\n  read line [") != std::string::npos);
  const auto anonymous = reg.collect_anonymous();
  REQUIRE(anonymous.size() == 1);
  CHECK(anonymous[0].to_string().find("\n  read line [") != std::string::npos);
  g.open();
  io.run();
  CHECK(read == std::string("session 7").size());
  CHECK(watch.expired());
  CHECK(reg.collect_all().empty());
}

TEST_CASE("tasks outlive their registry", "[asio][lifetime]") {
  net::io_context io;
  gate g;
  std::atomic<int> finished{0};
  {
    await_tree::registry reg = manual_registry();
    for (int i = 0; i < 3; ++i) {
      tracing::co_spawn(io, reg, i, "task", instrument(g.wait(), "waits"),
                        [&finished](std::exception_ptr e) {
                          if (!e) ++finished;
                        });
    }
    while (g.waiting() < 3 && io.run_one() > 0) {
    }
    REQUIRE(g.waiting() == 3);
    CHECK(reg.collect_all().size() == 3);
  }
  g.open();
  io.run();
  CHECK(finished == 3);
}

TEST_CASE("a registry outlives its io_context: suspended tasks leave with it", "[asio][lifetime]") {
  await_tree::registry reg = manual_registry();
  {
    net::io_context io;
    for (int i = 0; i < 3; ++i) {
      tracing::co_spawn(io, reg, i, "task", instrument(sleep_for(1h), "sleeps"), net::detached);
    }
    while (reg.collect_all().size() < 3 || !has_node(reg, 2, "sleeps")) {
      if (io.run_one_for(1s) == 0) break;
    }
    REQUIRE(text_of(reg, 2) ==
            "task [0ns]\n"
            "  sleeps [0ns]\n");
  }  // destroys the suspended coroutines
  CHECK(reg.collect_all().empty());
}

}  // namespace
