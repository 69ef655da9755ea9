// SPDX-License-Identifier: Apache-2.0
// fork() while other threads register, run and snapshot tasks: the child
// starts with every lock of the library free (fork_guard.hpp), so its dumps
// never block, and the watchdog and signal_dump copied into it behave as
// documented. Each child reports through its exit status.

#include <await_tree/detail/fork_guard.hpp>

#include "child_process.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "snapshotter.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace test;
using await_tree::instrument;

namespace {

using steady = std::chrono::steady_clock;

/// Forks; the child runs `body` and exits with its result (0 for success),
/// never returning here. Returns the child's wait status, or -1 when it has
/// not ended within a minute (a hang; it is then killed).
int run_in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  REQUIRE(pid > 0);
  const auto deadline = steady::now() + std::chrono::minutes(1);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (steady::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return status;
}

bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }

}  // namespace

// libstdc++'s debug mode (_GLIBCXX_DEBUG) locks a process-wide mutex pool in
// every checked iterator's constructor and destructor; a fork while another
// thread holds one leaves it locked in the child, whose first iterator then
// hangs. That is the checked library's limit, not ours: the test runs in
// every other configuration.
#ifndef _GLIBCXX_DEBUG
namespace {

/// Registers short tasks on the calling thread, each through a few
/// instrumented steps, until told to stop.
void register_and_run(await_tree::registry& reg, int first_key, const std::atomic<bool>& stop) {
  rt::executor ex(true);
  auto steps = [&ex]() -> rt::task<> {
    for (int i = 0; i < 3; ++i) co_await instrument(ex.yield(), "step");
  };
  for (int key = first_key; !stop.load(); ++key) {
    rt::spawn(ex, reg.register_task(key, "worker").instrument(steps()));
    rt::spawn(ex, reg.register_anonymous("anonymous worker").instrument(steps()));
    ex.run();
  }
}

}  // namespace

TEST_CASE("a child forked while threads register, run and snapshot tasks dumps at once", "[fork]") {
  constexpr int forks = 20;
  await_tree::registry reg = manual_registry();
  rt::executor anchors_ex(true);
  rt::event release;
  auto parked = [&]() -> rt::task<> { co_await instrument(release.wait(), "parked"); };
  for (int i = 0; i < 3; ++i) {
    rt::spawn(anchors_ex, reg.register_task(std::string("anchor ") + std::to_string(i), "anchor")
                              .instrument(parked()));
  }
  anchors_ex.run();

  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&, t] { register_and_run(reg, t * 1'000'000, stop); });
  }
  snapshotter watcher(reg);
  std::atomic<long> stalls{0};
  await_tree::watchdog dog(
      {.source = reg, .interval = 1ms, .threshold = 0ns, .on_stall = [&](const auto&) {
         ++stalls;
       }});
  REQUIRE(eventually([&] { return watcher.snapshots() > 100 && stalls.load() > 0; }));

  // The child's own measure of its dump, sent back through a pipe.
  int times[2];
  REQUIRE(::pipe(times) == 0);
  std::vector<double> dump_ms;
  for (int i = 0; i < forks; ++i) {
    const int status = run_in_child([&] {
      const auto start = steady::now();
      const std::string dump = await_tree::dump_to_string({.source = reg});
      const double ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
      static_cast<void>(::write(times[1], &ms, sizeof ms));
      for (int a = 0; a < 3; ++a) {
        const std::string expected =
            "[anchor " + std::to_string(a) + "]\nanchor [0ns]\n  parked [0ns]\n";
        if (dump.find(expected) == std::string::npos) return 1;
      }
      // The watchdog's copy has no thread here: check() scans on this
      // thread, stop() returns at once (the parent's bound on the child's
      // life catches a hang).
      static_cast<void>(dog.check());
      dog.stop();
      return 0;
    });
    CHECK(exited_with(status, 0));
    double ms = 0;
    if (::read(times[0], &ms, sizeof ms) == sizeof ms) dump_ms.push_back(ms);
  }
  ::close(times[0]);
  ::close(times[1]);
  stop = true;
  for (std::thread& w : workers) w.join();
  dog.stop();
  watcher.stop();
  release.set();
  anchors_ex.run();
  CHECK(watcher.malformed() == 0);
  REQUIRE(dump_ms.size() == static_cast<std::size_t>(forks));
  std::sort(dump_ms.begin(), dump_ms.end());
  std::printf("fork test: %d children, each dump took median %.3f ms, max %.3f ms\n", forks,
              dump_ms[dump_ms.size() / 2], dump_ms.back());
}
#endif

namespace {

std::size_t count_in_file(const std::string& path, std::string_view text) {
  std::ifstream in(path);
  const std::string content(std::istreambuf_iterator<char>(in), {});
  return child_process::count(content, text);
}

}  // namespace

TEST_CASE("a signal_dump copied into a forked child stays out of the parent's way",
          "[fork][signal]") {
  single_task t;
  rt::event done;
  t.spawn([](rt::event& e) -> rt::task<> { co_await instrument(e.wait(), "waiting"); }(done));
  t.ex.run();
  const temp_dir dir;
  const std::string file = dir / "tasks.txt";
  std::optional<await_tree::signal_dump> on_usr2;
  on_usr2.emplace(SIGUSR2,
                  await_tree::signal_dump_options{.dump = {.source = t.reg}, .path = file});

  const int status = run_in_child([&] {
    // The signal is free for the child, and dropped while nobody takes it.
    if (await_tree::detail::signal_dump_state().wake_fds[SIGUSR2].load() != -1) return 1;
    ::raise(SIGUSR2);
    on_usr2.reset();  // neither stops the parent's thread nor waits for it
    ::raise(SIGUSR2);
    return 0;
  });
  CHECK(exited_with(status, 0));

  // The parent's signal_dump still works, and dumped only for its own signal.
  REQUIRE(::raise(SIGUSR2) == 0);
  REQUIRE(eventually([&] { return std::filesystem::file_size(file) > 0; }));
  on_usr2.reset();
  CHECK(count_in_file(file, "[0]\nroot [0ns]\n  waiting [0ns]\n") == 1);
  done.set();
  CHECK(t.finishes());
}
