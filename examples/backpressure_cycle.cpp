// SPDX-License-Identifier: Apache-2.0
//
// backpressure_cycle: actors that wait on each other in a cycle, through
// bounded streams and a flow-control window they share, and a dump of their
// trees from which the cycle can be read.
//
// Node A runs two sources, actors 1 and 2; node B runs a join, actor 3, and a
// relay, actor 4. Streams 1→3 and 2→4 cross the connection from A to B; stream
// 4→3 is a channel of one message on node B. The join takes a message from
// actor 1, then one from actor 4, in lockstep. Actor 2 sends a backlog at
// once; actor 1 produces a message every quarter second.
//
// In the first design both streams share the connection's window: at most 4
// messages sent over it and not yet read by their actor. Actor 4 forwards
// actor 2's messages until the channel to the join is full (the join waits for
// actor 1); the messages it leaves unread fill the window; actor 1 cannot
// send; the join waits for actor 1 for ever. Each actor's span says which
// actor it waits for (span::waits_for), so the dump finds the cycle
// 1 → 4 → 3 → 1 by itself and opens with it.
//
// When no message has been delivered for 2 s, the example prints the dump and
// stops the job. The fix gives each stream a window of its own (the same 4
// credits, 2 per stream): actor 2's backlog then holds up only actor 2, and the
// job completes.
//
// Usage: backpressure_cycle [--fast]   (--fast: one "second" lasts 10 ms)

#include <await_tree/await_tree.hpp>

#include "example.hpp"
#include "runtime/channel.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/wait_queue.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using await_tree::instrument;
using example::task;
using std::chrono::nanoseconds;

using message = int;

/// The registry key of an actor's task.
std::string actor_key(int actor) { return fmt::format("actor {}", actor); }

/// Flow-control credit, as in HTTP/2: each message sent takes a credit, which
/// its receiving actor gives back when it reads the message. A sender waits
/// while no credit is left.
class window {
 public:
  window(rt::executor& ex, std::string_view scope, std::size_t credits)
      : scope_(scope), credits_(credits), returned_(ex) {}

  [[nodiscard]] bool exhausted() const noexcept { return in_use_ == credits_; }

  /// Why a sender waits, for its span: "connection window full: 4 unread by
  /// actor 4".
  [[nodiscard]] std::string why_full() const {
    std::vector<std::string> holders;
    for (const auto& [actor, unread] : unread_by_) {
      if (unread > 0) holders.push_back(fmt::format("{} unread by actor {}", unread, actor));
    }
    return fmt::format("{} window full: {}", scope_, fmt::join(holders, ", "));
  }

  /// The actor whose unread messages hold the most credits: the one a
  /// sender waits for.
  [[nodiscard]] std::string main_holder() const {
    const auto most =
        std::max_element(unread_by_.begin(), unread_by_.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    return actor_key(most->first);
  }

  [[nodiscard]] rt::wait_queue::awaiter credit_returned() { return returned_.wait(); }

  void take(int receiver) {
    ++in_use_;
    ++unread_by_[receiver];
  }

  void give_back(int receiver) {
    --in_use_;
    --unread_by_[receiver];
    returned_.notify_all();
  }

 private:
  std::string scope_;
  std::size_t credits_;
  std::size_t in_use_ = 0;
  std::map<int, std::size_t> unread_by_;
  rt::wait_queue returned_;
};

/// A stream between actors on two nodes: its messages cross the connection,
/// paced by a window (the connection's or the stream's own).
class remote_stream {
 public:
  remote_stream(rt::executor& ex, int from, int to, window& credit, std::size_t& delivered)
      : from_(from),
        to_(to),
        credit_(credit),
        delivered_(delivered),
        // Never full: the window bounds what is in flight.
        arrived_(ex, std::numeric_limits<std::size_t>::max()) {}

  task<> send(message m) {
    while (credit_.exhausted()) {
      co_await instrument(
          credit_.credit_returned(),
          await_tree::span(fmt::format("send to actor {} ({})", to_, credit_.why_full()))
              .waits_for(credit_.main_holder()));
    }
    credit_.take(to_);
    co_await arrived_.send(m);
  }

  task<std::optional<message>> recv() {
    std::optional<message> m = co_await instrument(
        arrived_.recv(),
        await_tree::span(fmt::format("recv from actor {}", from_)).waits_for(actor_key(from_)));
    if (m) {
      credit_.give_back(to_);
      ++delivered_;
    }
    co_return m;
  }

  void close() { arrived_.close(); }

 private:
  int from_;
  int to_;
  window& credit_;
  std::size_t& delivered_;
  rt::channel<message> arrived_;
};

/// A stream between two actors on one node: a bounded channel.
class local_stream {
 public:
  local_stream(rt::executor& ex, int from, int to, std::size_t capacity, std::size_t& delivered)
      : from_(from), to_(to), delivered_(delivered), channel_(ex, capacity) {}

  task<> send(message m) {
    // Shown only while the send waits, which it does only when the channel is full.
    co_await instrument(channel_.send(m),
                        await_tree::span(fmt::format("send to actor {} (channel full)", to_))
                            .waits_for(actor_key(to_)));
  }

  task<std::optional<message>> recv() {
    std::optional<message> m = co_await instrument(
        channel_.recv(),
        await_tree::span(fmt::format("recv from actor {}", from_)).waits_for(actor_key(from_)));
    if (m) ++delivered_;
    co_return m;
  }

  void close() { channel_.close(); }

 private:
  int from_;
  int to_;
  std::size_t& delivered_;
  rt::channel<message> channel_;
};

/// How the connection from node A to node B paces its streams.
enum class flow_control {
  connection_window,  // 4 credits shared by every stream
  stream_windows,     // 2 credits for each stream
};

/// The four actors and the streams between them; see the top of the file.
class job {
 public:
  job(rt::executor& ex, await_tree::registry& reg, flow_control fc, nanoseconds second)
      : ex_(ex),
        reg_(reg),
        second_(second),
        from_1_to_3_(ex, 1, 3, window_for_new_stream(fc), delivered_),
        from_2_to_4_(ex, 2, 4, window_for_new_stream(fc), delivered_),
        from_4_to_3_(ex, 4, 3, 1, delivered_) {}

  void start() {
    spawn(1, "source on node A", source(from_1_to_3_, second_ / 4));
    spawn(2, "source on node A, with a backlog", source(from_2_to_4_, nanoseconds(0)));
    spawn(3, "join on node B", join(from_1_to_3_, from_4_to_3_));
    spawn(4, "relay on node B", relay(from_2_to_4_, from_4_to_3_));
  }

  /// Cancels every actor still running.
  void stop() { stop_.set(); }

  /// Messages read by their actors so far: the job's progress.
  [[nodiscard]] std::size_t delivered() const noexcept { return delivered_; }
  [[nodiscard]] std::size_t pairs_joined() const noexcept { return pairs_joined_; }

 private:
  static constexpr message messages_per_source = 8;

  window& window_for_new_stream(flow_control fc) {
    if (fc == flow_control::stream_windows) return windows_.emplace_back(ex_, "stream", 2);
    if (windows_.empty()) windows_.emplace_back(ex_, "connection", 4);
    return windows_.front();
  }

  void spawn(int actor, await_tree::span role, task<> body) {
    rt::spawn(ex_, reg_.register_task(actor_key(actor), std::move(role))
                       .instrument(example::until_stopped(std::move(body), stop_)));
  }

  task<> source(remote_stream& out, nanoseconds pace) {
    for (message m = 1; m <= messages_per_source; ++m) {
      co_await instrument(ex_.sleep(pace), "poll the source");
      co_await out.send(m);
    }
    out.close();
  }

  task<> relay(remote_stream& in, local_stream& out) {
    while (const std::optional<message> m = co_await in.recv()) co_await out.send(*m);
    out.close();
  }

  task<> join(remote_stream& left, local_stream& right) {
    for (;;) {
      const std::optional<message> from_left = co_await left.recv();
      if (!from_left) break;
      const std::optional<message> from_right = co_await right.recv();
      if (!from_right) break;
      ++pairs_joined_;
    }
  }

  rt::executor& ex_;
  await_tree::registry& reg_;
  nanoseconds second_;
  std::size_t delivered_ = 0;
  std::size_t pairs_joined_ = 0;
  std::deque<window> windows_;  // filled before the streams that use them
  remote_stream from_1_to_3_;
  remote_stream from_2_to_4_;
  local_stream from_4_to_3_;
  rt::event stop_;
};

/// Runs the job with the connection paced as `fc` says; prints the actors'
/// trees when it gets stuck, and stops it.
void run_job(flow_control fc, nanoseconds second) {
  await_tree::registry reg(await_tree::config{.long_running_threshold = second});
  rt::executor ex;
  job j(ex, reg, fc, second);
  j.start();
  example::run_for(ex, second / 10);
  example::print_trees(reg, "0.1 s: actor 2's backlog is in flight, actor 1 has sent nothing yet");

  const example::stall_check check{
      .tick = second / 4, .patience = 2 * second, .limit = 10 * second};
  const example::run_end end = example::run_watched(
      ex, check, [&] { return reg.collect_all().empty(); }, [&] { return j.delivered(); });
  if (end == example::run_end::stalled) {
    example::print_trees(reg, "no message delivered for 2 s: every actor waits");
    j.stop();
    std::printf("stopped the stuck job: %zu task(s) left\n", reg.collect_all().size());
  } else {
    std::printf("job finished: actor 3 joined %zu pairs; %zu task(s) left\n", j.pairs_joined(),
                reg.collect_all().size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const nanoseconds second = example::second(argc, argv);
  std::puts("=== design 1: one window for the whole connection (4 credits) ===");
  run_job(flow_control::connection_window, second);
  std::puts("=== design 2: a window for each stream (2 credits each) ===");
  run_job(flow_control::stream_windows, second);
}
