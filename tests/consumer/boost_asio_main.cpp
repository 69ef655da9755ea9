// Smoke test for the packaged Boost.Asio flavour: a task waits on a timer
// under an instrumented await; its tree is printed while it waits.
#include <await_tree/boost_asio.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>

namespace {

boost::asio::awaitable<void> wait_on(boost::asio::steady_timer& timer) {
  co_await await_tree::boost_asio::instrument(timer.async_wait(boost::asio::use_awaitable),
                                              "wait for the timer");
}

}  // namespace

int main() {
  boost::asio::io_context io;
  await_tree::registry reg;
  boost::asio::steady_timer timer(io, std::chrono::hours(1));
  await_tree::boost_asio::co_spawn(io, reg, 1, "consumer", wait_on(timer), boost::asio::detached);
  io.poll();  // the task runs until it waits on the timer
  const auto tree = reg.get(1);
  if (!tree) {
    std::fputs("task 1 is not registered\n", stderr);
    return 1;
  }
  std::fputs(tree->to_string().c_str(), stdout);
  timer.cancel();
  io.run();
  return reg.get(1) ? 1 : 0;  // the task ended with its coroutine
}
