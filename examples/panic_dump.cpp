// SPDX-License-Identifier: Apache-2.0
//
// panic_dump: the trees of a process that dies of an uncaught exception.
//
// A small storage service runs three tasks: a compaction waiting for its
// next round and two request handlers reading blocks. Handler 2 decodes a
// corrupt block inside a `noexcept` function, so the exception cannot leave
// it: std::terminate. The handler installed with
// `await_tree::install_terminate_handler()` prints the cause, the tree of the
// task that was running (marked as such) and every task's tree, then hands
// over to the standard handler, which aborts.
//
// The service runs in a child process, so that this example can show the
// abort and still exit 0: the parent checks that the child died of SIGABRT.
//
// Usage: panic_dump [--fast]   (--fast: one "second" lasts 10 ms)

#include <await_tree/await_tree.hpp>

#include "example.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace {

using await_tree::instrument;
using std::chrono::nanoseconds;

struct service {
  rt::executor& ex;
  nanoseconds second;

  static int decode(const std::string& block) {
    if (block.find("garbage") != std::string::npos) {
      throw std::runtime_error("checksum mismatch in block 17");
    }
    return static_cast<int>(block.size());
  }

  // Applying a block must not fail halfway, hence noexcept: an exception in
  // here ends the process, with this task's tree on the way out.
  static int apply(const std::string& block) noexcept { return decode(block); }

  rt::task<std::string> read_block(int id) {
    co_await instrument(ex.sleep(second / 10 * id), fmt::format("read block {} from disk", id));
    co_return id == 17 ? std::string("garbage") : std::string("rows");
  }

  rt::task<> handle(int block) {
    const std::string data = co_await instrument(read_block(block), "read");
    co_await instrument(
        [](std::string b) -> rt::task<> {
          apply(b);
          co_return;
        }(data),
        fmt::format("apply block {}", block));
  }

  rt::task<> compaction() {
    co_await instrument(ex.sleep(60 * second),
                        await_tree::span("wait for the next compaction round").long_running());
  }
};

/// The service, in the child process: never returns.
[[noreturn]] void run_service(nanoseconds second) {
  await_tree::init_global_registry();
  await_tree::install_terminate_handler(STDOUT_FILENO);
  await_tree::registry& reg = *await_tree::global_registry();
  rt::executor ex;
  service s{ex, second};
  rt::spawn(ex,
            reg.register_task(std::string("compaction"), "compaction").instrument(s.compaction()));
  for (const auto& [request, block] : {std::pair(1, 4), std::pair(2, 17)}) {
    rt::spawn(ex, reg.register_task(fmt::format("request {}", request),
                                    await_tree::span(fmt::format("handle request {}", request)))
                      .instrument(s.handle(block)));
  }
  ex.run_for(60 * second);
  std::puts("the service did not crash");
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  const nanoseconds second = example::second(argc, argv);
  std::fflush(stdout);
  const pid_t child = fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) run_service(second);

  int status = 0;
  if (waitpid(child, &status, 0) != child) {
    std::perror("waitpid");
    return 1;
  }
  const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  std::printf("--- the service %s ---\n", aborted
                                              ? "died of SIGABRT, after printing the trees above"
                                              : "did not die of SIGABRT");
  return aborted ? 0 : 1;
}
