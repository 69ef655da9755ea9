// SPDX-License-Identifier: Apache-2.0
#pragma once

// The simulated service of hang_report and live_view: a thousand connections,
// most idle in a long-running read, some stuck in a query on replica 2, a few
// stuck writing a response to a client that reads no more.

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <fmt/format.h>

#include <chrono>

namespace example {

struct connection_service {
  rt::executor& ex;
  rt::event& never;  // what the stuck and idle connections wait for
  /// Connection N is accepted N * 37 ms (modulo this) into the run.
  std::chrono::milliseconds accept_spread;

  rt::task<> connection(int id) {
    using await_tree::instrument;
    using await_tree::span;
    co_await instrument(ex.sleep(std::chrono::milliseconds(id * 37 % accept_spread.count())),
                        "accept");
    if (id % 20 < 13) {
      co_await instrument(never.wait(), span("read request").long_running());
    } else if (id % 20 < 19) {
      co_await instrument(
          rt::when_all(instrument(never.wait(), "fetch rows from replica 2"),
                       instrument(never.wait(), span("refresh lease").long_running())),
          fmt::format("query {}", id * 31));
    } else {
      co_await instrument(never.wait(), "write response");
    }
  }

  void open(await_tree::registry& reg, int id) {
    rt::spawn(ex, reg.register_task(fmt::format("conn {}", id), fmt::format("connection {}", id))
                      .instrument(connection(id)));
  }
};

}  // namespace example
