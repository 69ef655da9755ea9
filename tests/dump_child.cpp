// SPDX-License-Identifier: Apache-2.0
// The child process of the handler tests (test_handlers.cpp): it registers
// three tasks in the global registry, runs them on the manual clock for 2 s,
// then dies, or answers signals, as its arguments say:
//
//   dump_child crash SIGSEGV|SIGBUS|SIGFPE|SIGILL|SIGABRT
//   dump_child crash-chained SIGNAL siginfo|plain
//                                      the same, with a handler of that kind
//                                      installed before, which says it ran
//                                      and re-raises with the default action
//   dump_child crash-ignored           SIGFPE ignored, then raised: lives on
//   dump_child crash-in-locked-tree    the fault comes while its tree is locked
//   dump_child crash-in-locked-shard   ... while a registry shard is locked
//   dump_child crash-by-stack-overflow
//   dump_child crash-without-registry
//   dump_child terminate               an exception leaves a noexcept function
//   dump_child terminate-and-crash     the same with both handlers installed
//   dump_child terminate-outside-task
//   dump_child signal-dump [PATH]      prints "ready", dumps on each SIGUSR1
//                                      (to PATH if given) until stdin ends,
//                                      then uninstalls
//   dump_child watchdog                three scans, the stuck task 12 s old
//   dump_child dump-without-registry
//
// The tasks, at the 2 s mark:
//
//   [worker 1]  worker 1 > read block 7         (waits on an event)
//   [2]         worker 2 > crashing             (running: does the crash)
//   [shard 3]   shard 3 > heartbeat             (long-running; a key type
//                                                the crash handler cannot
//                                                print without allocating)

#include <await_tree/await_tree.hpp>

#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <unistd.h>

/// AddressSanitizer and ThreadSanitizer handle SIGSEGV, SIGBUS and SIGFPE
/// themselves: their handler would be the action install_crash_handler()
/// passes these on to, and would end the process with a report of its own
/// instead of the signal that the tests check for.
constexpr const char* sanitizers_leave_crash_signals =
    "handle_segv=0:handle_sigbus=0:handle_sigfpe=0";
extern "C" const char* __asan_default_options() { return sanitizers_leave_crash_signals; }
extern "C" const char* __tsan_default_options() { return sanitizers_leave_crash_signals; }

namespace {

using namespace std::chrono_literals;
using await_tree::instrument;

struct shard_id {
  int value;
  friend bool operator==(const shard_id&, const shard_id&) = default;
};

/// A key whose comparison crashes once armed: looking an equal key up then
/// crashes while a registry shard's mutex is held.
struct trap_key {
  int value;
  friend bool operator==(const trap_key& a, const trap_key& b) noexcept;
};

std::atomic<bool> trap_armed{false};
std::atomic<bool> clock_armed{false};

bool operator==(const trap_key& a, const trap_key& b) noexcept {
  if (trap_armed.exchange(false)) raise(SIGSEGV);
  return a.value == b.value;
}

}  // namespace

template <>
struct std::hash<shard_id> {
  std::size_t operator()(const shard_id& s) const noexcept { return std::hash<int>{}(s.value); }
};
template <>
struct fmt::formatter<shard_id> : fmt::formatter<int> {
  auto format(const shard_id& s, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "shard {}", s.value);
  }
};
template <>
struct std::hash<trap_key> {
  std::size_t operator()(const trap_key& k) const noexcept { return std::hash<int>{}(k.value); }
};
template <>
struct fmt::formatter<trap_key> : fmt::formatter<int> {
  auto format(const trap_key& k, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "trap {}", k.value);
  }
};

namespace {

/// The manual clock, which crashes once when armed: the tree's clock is read
/// while the tree's mutex is held.
std::chrono::nanoseconds child_clock() noexcept {
  if (clock_armed.exchange(false)) raise(SIGSEGV);
  return rt::manual_clock::now();
}

int chosen_signal = 0;

rt::task<> raise_chosen_signal(rt::executor&) {
  if (chosen_signal == SIGABRT) std::abort();
  raise(chosen_signal);
  co_return;
}

rt::task<> crash_in_locked_tree(rt::executor& ex) {
  clock_armed = true;
  co_await instrument(ex.yield(), "never shown");
}

rt::task<> crash_in_locked_shard(rt::executor&) {
  const auto root = await_tree::global_registry()->register_task(trap_key{1}, "trap");
  trap_armed = true;
  static_cast<void>(await_tree::global_registry()->get(trap_key{1}));
  co_return;
}

/// Recurses until the stack overflows; the handler then runs on the
/// alternate stack that install_crash_handler() gave this thread.
[[gnu::noinline]] int recurse(int depth) {
  volatile char frame[256] = {};
  frame[0] = static_cast<char>(depth);
  return depth < 0 ? 0 : recurse(depth + 1) + frame[0];
}

rt::task<> overflow_the_stack(rt::executor&) {
  std::printf("%d\n", recurse(0));
  co_return;
}

[[gnu::noinline]] void fail() { throw std::runtime_error("boom"); }

void call_noexcept(void (*f)()) noexcept { f(); }

rt::task<> escape_noexcept(rt::executor&) {
  call_noexcept(&fail);
  co_return;
}

rt::task<> do_nothing(rt::executor&) { co_return; }

using action = rt::task<> (*)(rt::executor&);

rt::task<> wait_at(rt::event& done, await_tree::span where) {
  co_await instrument(done.wait(), std::move(where));
}

rt::task<> worker_2(rt::executor& ex, action crash) {
  co_await instrument(ex.sleep(2s), "warming up");
  co_await instrument(crash(ex), "crashing");
}

/// The three tasks, run to the 2 s mark, where worker 2 runs `crash`.
class world {
 public:
  explicit world(action crash) {
    await_tree::registry& reg = *await_tree::global_registry();
    rt::spawn(ex_, reg.register_task(std::string("worker 1"), "worker 1")
                       .instrument(wait_at(done_, "read block 7")));
    rt::spawn(ex_, reg.register_task(2, "worker 2").instrument(worker_2(ex_, crash)));
    rt::spawn(ex_, reg.register_task(shard_id{3}, "shard 3")
                       .instrument(wait_at(done_, await_tree::span("heartbeat").long_running())));
    ex_.run_until(2s);
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;
  /// Ends the tasks, so that the process leaves nothing behind.
  ~world() {
    done_.set();
    ex_.run();
  }

 private:
  rt::executor ex_{true};
  rt::event done_;
};

void init_registry() {
  rt::manual_clock::set(0ns);
  await_tree::init_global_registry(await_tree::config{.clock = &child_clock});
}

int crash(action how) {
  init_registry();
  await_tree::install_crash_handler();
  world w(how);
  return 1;  // not reached
}

/// A crash reporter of the usual kind: it reports (a line saying what it
/// received), then lets the process die of the signal.
void report_then_die(int sig, const char* what) noexcept {
  const std::string_view line = what;
  static_cast<void>(::write(STDERR_FILENO, line.data(), line.size()));
  signal(sig, SIG_DFL);
  raise(sig);
}

void previous_plain_handler(int sig) noexcept {
  report_then_die(sig, "previous plain handler ran\n");
}

void previous_siginfo_handler(int sig, siginfo_t* info, void* context) noexcept {
  const bool intact = info != nullptr && info->si_signo == sig && context != nullptr;
  report_then_die(sig, intact ? "previous siginfo handler ran with its siginfo and context\n"
                              : "previous siginfo handler ran without its arguments\n");
}

int crash_chained(std::string_view kind) {
  struct sigaction previous {};
  sigemptyset(&previous.sa_mask);
  if (kind == "siginfo") {
    previous.sa_sigaction = &previous_siginfo_handler;
    previous.sa_flags = SA_SIGINFO;
  } else {
    previous.sa_handler = &previous_plain_handler;
  }
  sigaction(chosen_signal, &previous, nullptr);
  return crash(&raise_chosen_signal);
}

/// An ignored signal stays ignored: raising it is harmless.
int crash_ignored() {
  signal(SIGFPE, SIG_IGN);
  init_registry();
  await_tree::install_crash_handler();
  raise(SIGFPE);
  std::puts(signal(SIGFPE, SIG_IGN) == SIG_IGN ? "still ignored" : "no longer ignored");
  return 0;
}

int terminate(bool with_crash_handler) {
  init_registry();
  await_tree::install_terminate_handler();
  if (with_crash_handler) await_tree::install_crash_handler();
  world w(&escape_noexcept);
  return 1;  // not reached
}

int crash_without_registry() {
  await_tree::install_crash_handler();
  raise(SIGSEGV);
  return 1;
}

int terminate_outside_task() {
  init_registry();
  await_tree::install_terminate_handler();
  world w(&do_nothing);
  std::terminate();
}

/// Waits in poll(), not in read(): ThreadSanitizer delivers a signal to a
/// thread in the calls it knows to block, and read() is not one of them.
void wait_for_end_of_input() {
  pollfd in{STDIN_FILENO, POLLIN, 0};
  char c;
  for (;;) {
    const int ready = ::poll(&in, 1, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || ::read(STDIN_FILENO, &c, 1) <= 0) return;
  }
}

/// Dumps on each SIGUSR1 until stdin ends, then checks that uninstalling
/// restored the previous action.
int signal_dump(std::string path) {
  init_registry();
  world w(&do_nothing);
  {
    const await_tree::signal_dump on_usr1(SIGUSR1, {.path = std::move(path)});
    std::puts("ready");
    std::fflush(stdout);
    wait_for_end_of_input();
  }
  struct sigaction now {};
  sigaction(SIGUSR1, nullptr, &now);
  std::puts(now.sa_handler == SIG_DFL ? "restored" : "not restored");
  return 0;
}

/// Three scans with the default report: at 12 s (worker 1 stalled), again at
/// 12 s, and at 13 s. Prints how many stalls each found.
int watchdog() {
  init_registry();
  world w(&do_nothing);
  await_tree::watchdog dog({.interval = 0ms});
  rt::manual_clock::set(12s);
  const std::size_t first = dog.check();
  const std::size_t second = dog.check();
  rt::manual_clock::set(13s);
  const std::size_t third = dog.check();
  std::printf("stalls found: %zu %zu %zu\n", first, second, third);
  return 0;
}

int dump_without_registry() {
  std::fputs(await_tree::dump_to_string().c_str(), stdout);
  std::puts(await_tree::dump_to_string({.format = await_tree::dump_format::json}).c_str());
  return 0;
}

int signal_number(std::string_view name) {
  const std::map<std::string_view, int> signals{{"SIGSEGV", SIGSEGV},
                                                {"SIGBUS", SIGBUS},
                                                {"SIGFPE", SIGFPE},
                                                {"SIGILL", SIGILL},
                                                {"SIGABRT", SIGABRT}};
  const auto it = signals.find(name);
  return it != signals.end() ? it->second : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The crashes are deliberate: no core files from them.
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);

  const std::string_view scenario = argc > 1 ? argv[1] : "";
  const std::map<std::string_view, std::function<int()>> scenarios{
      {"crash-in-locked-tree", [] { return crash(&crash_in_locked_tree); }},
      {"crash-in-locked-shard", [] { return crash(&crash_in_locked_shard); }},
      {"crash-ignored", &crash_ignored},
      {"crash-by-stack-overflow", [] { return crash(&overflow_the_stack); }},
      {"crash-without-registry", &crash_without_registry},
      {"terminate", [] { return terminate(false); }},
      {"terminate-and-crash", [] { return terminate(true); }},
      {"terminate-outside-task", &terminate_outside_task},
      {"signal-dump", [&] { return signal_dump(argc > 2 ? argv[2] : ""); }},
      {"watchdog", &watchdog},
      {"dump-without-registry", &dump_without_registry},
  };
  if (scenario == "crash" && argc > 2 && (chosen_signal = signal_number(argv[2])) != 0) {
    return crash(&raise_chosen_signal);
  }
  if (scenario == "crash-chained" && argc > 3 && (chosen_signal = signal_number(argv[2])) != 0) {
    return crash_chained(argv[3]);
  }
  if (const auto it = scenarios.find(scenario); it != scenarios.end()) return it->second();
  std::fprintf(stderr, "dump_child: unknown scenario; see the comment at the top of %s\n",
               __FILE__);
  return 2;
}
