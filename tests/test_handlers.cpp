// SPDX-License-Identifier: Apache-2.0
// The dumps made when a process dies or is signalled: each scenario runs in a
// child process (dump_child.cpp) whose output and exit status are checked
// here. Also, in this process: the crash handlers' rendering against
// tree::to_string(), signal_dump's file output and set-up errors, and
// current_tree() in a catch block.

#include <await_tree/detail/dying_dump.hpp>

#include "child_process.hpp"
#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace test;
using await_tree::instrument;

namespace {

// The blocks every dump of dump_child shows at its 2 s mark.
constexpr std::string_view worker_1 =
    "[worker 1]\n"
    "worker 1 [2.000s]\n"
    "  read block 7 [2.000s]\n\n";
constexpr std::string_view worker_2_tree =
    "worker 2 [2.000s]\n"
    "  crashing [0ns]  <== current\n";
constexpr std::string_view shard_3_tree =
    "shard 3 [2.000s]\n"
    "  heartbeat [2.000s]\n";

struct child_run {
  int status;
  std::string out;
  std::string err;
};

child_run run_child(const std::vector<std::string>& args) {
  std::vector<std::string> argv{AWAIT_TREE_DUMP_CHILD};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process child(argv);
  const int status = child.finish();
  return {status, child.out(), child.err()};
}

int signal_number(const std::string& name) {
  if (name == "SIGSEGV") return SIGSEGV;
  if (name == "SIGBUS") return SIGBUS;
  if (name == "SIGFPE") return SIGFPE;
  if (name == "SIGILL") return SIGILL;
  return SIGABRT;
}

bool died_of(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

}  // namespace

TEST_CASE("a crash signal prints every task, then the process dies of that signal",
          "[handlers][crash]") {
  const std::string name =
      GENERATE(as<std::string>{}, "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT");
  const int sig = signal_number(name);
  const child_run run = run_child({"crash", name});
  INFO(run.err);
  // Dying of the signal itself, not exiting: the default action, which
  // writes a core file where enabled (the child disables them).
  CHECK(died_of(run.status, sig));
  const std::string header =
      fmt::format("await-tree: fatal signal {} ({}); every task:\n", sig, name);
  const std::string worker_2 = fmt::format("[2]\n{}\n", worker_2_tree);
  // Formatting a key of a user type could allocate: it is not printed.
  const std::string shard_3 =
      fmt::format("[(a key that cannot be printed without allocating)]\n{}\n", shard_3_tree);
  const std::string footer = "await-tree: end of dump (3 tasks)\n";
  CHECK_THAT(run.err, Catch::StartsWith(header));
  CHECK_THAT(run.err, Catch::Contains(std::string(worker_1)));
  CHECK_THAT(run.err, Catch::Contains(worker_2));
  CHECK_THAT(run.err, Catch::Contains(shard_3));
  CHECK_THAT(run.err, Catch::EndsWith(footer));
  // Nothing else: in particular no sanitizer report of an allocation or of
  // errno changed in the handler (ThreadSanitizer checks both).
  CHECK(run.err.size() ==
        header.size() + worker_1.size() + worker_2.size() + shard_3.size() + footer.size());
}

TEST_CASE("after its dump, a crash signal is passed on to the handler installed before",
          "[handlers][crash]") {
  const std::string name =
      GENERATE(as<std::string>{}, "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT");
  const std::string kind = GENERATE(as<std::string>{}, "siginfo", "plain");
  const int sig = signal_number(name);
  const child_run run = run_child({"crash-chained", name, kind});
  INFO(run.err);
  CHECK(died_of(run.status, sig));
  CHECK_THAT(run.err,
             Catch::StartsWith(fmt::format("await-tree: fatal signal {} ({})", sig, name)));
  const std::string previous_ran =
      kind == "siginfo" ? "previous siginfo handler ran with its siginfo and context\n"
                        : "previous plain handler ran\n";
  // The dump first, then the previous handler, once.
  CHECK_THAT(run.err, Catch::EndsWith("await-tree: end of dump (3 tasks)\n" + previous_ran));
  CHECK(child_process::count(run.err, "previous") == 1);
}

TEST_CASE("an ignored crash signal stays ignored", "[handlers][crash]") {
  const child_run run = run_child({"crash-ignored"});
  CHECK(WIFEXITED(run.status));
  CHECK(run.out == "still ignored\n");
  CHECK(run.err.empty());
}

TEST_CASE("a stack overflow is dumped from the alternate signal stack", "[handlers][crash]") {
  const child_run run = run_child({"crash-by-stack-overflow"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGSEGV));
  CHECK_THAT(run.err, Catch::StartsWith("await-tree: fatal signal 11 (SIGSEGV); every task:\n"));
  CHECK_THAT(run.err, Catch::Contains(fmt::format("[2]\n{}\n", worker_2_tree)));
  CHECK_THAT(run.err, Catch::EndsWith("await-tree: end of dump (3 tasks)\n"));
}

TEST_CASE("a crash while the dying thread holds its tree's mutex skips that tree",
          "[handlers][crash]") {
  const child_run run = run_child({"crash-in-locked-tree"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGSEGV));
  CHECK_THAT(run.err, Catch::Contains(
                          "[2]\n(not shown: its tree is locked, maybe by the dying thread)\n\n"));
  CHECK_THAT(run.err, Catch::Contains(std::string(worker_1)));
  CHECK_THAT(run.err, Catch::EndsWith("await-tree: end of dump (3 tasks)\n"));
}

TEST_CASE("a crash while a registry shard's mutex is held skips that shard", "[handlers][crash]") {
  const child_run run = run_child({"crash-in-locked-shard"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGSEGV));
  CHECK_THAT(run.err, Catch::Contains("await-tree: (a registry shard is locked, maybe by the "
                                      "dying thread: its tasks are not shown)\n"));
  CHECK_THAT(run.err, Catch::Contains("await-tree: end of dump ("));
}

TEST_CASE("without a global registry the crash handler says so", "[handlers][crash]") {
  const child_run run = run_child({"crash-without-registry"});
  CHECK(died_of(run.status, SIGSEGV));
  CHECK(run.err ==
        "await-tree: fatal signal 11 (SIGSEGV); every task:\n"
        "await-tree: no global registry (call await_tree::init_global_registry())\n");
}

TEST_CASE("the terminate handler prints the cause, the thread's task and every task, then chains",
          "[handlers][terminate]") {
  const child_run run = run_child({"terminate"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGABRT));
  CHECK_THAT(run.err,
             Catch::StartsWith(fmt::format("await-tree: std::terminate called after an uncaught "
                                           "exception: boom\n"
                                           "await-tree: the terminating thread's task:\n"
                                           "{}\n"
                                           "await-tree: every task:\n",
                                           worker_2_tree)));
  CHECK_THAT(run.err, Catch::Contains(std::string(worker_1)));
  CHECK_THAT(run.err, Catch::Contains(fmt::format("[2]  <== the terminating thread's task\n{}\n",
                                                  worker_2_tree)));
  // Outside a signal handler any key is printed.
  CHECK_THAT(run.err, Catch::Contains(fmt::format("[shard 3]\n{}\n", shard_3_tree)));
  // Then the standard library's handler, which names the exception's type.
  CHECK_THAT(run.err, Catch::Contains("await-tree: end of dump (3 tasks)\n"
                                      "terminate called after throwing an instance of "
                                      "'std::runtime_error'\n"));
}

TEST_CASE("with both handlers installed, std::terminate dumps once", "[handlers][terminate]") {
  const child_run run = run_child({"terminate-and-crash"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGABRT));
  CHECK(child_process::count(run.err, "await-tree: every task:") == 1);
  CHECK(child_process::count(run.err, "await-tree: fatal signal") == 0);
  CHECK(child_process::count(run.err, "await-tree: end of dump") == 1);
}

TEST_CASE("std::terminate outside any task and without an exception", "[handlers][terminate]") {
  const child_run run = run_child({"terminate-outside-task"});
  INFO(run.err);
  CHECK(died_of(run.status, SIGABRT));
  CHECK_THAT(run.err, Catch::StartsWith("await-tree: std::terminate called (no exception is "
                                        "active)\nawait-tree: every task:\n"));
  CHECK(child_process::count(run.err, "terminating thread") == 0);
}

TEST_CASE("a signal_dump dumps on each signal, then uninstalls", "[handlers][signal]") {
  child_process child({AWAIT_TREE_DUMP_CHILD, "signal-dump"});
  REQUIRE(child.wait_for(child_process::stream::out, "ready\n"));
  // Worker 2 has finished: it crashes only when asked to.
  const std::string expected = fmt::format("[shard 3]\n{}\n{}", shard_3_tree, worker_1);
  REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
  REQUIRE(child.wait_for(child_process::stream::err, expected));
  REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
  REQUIRE(child.wait_for(child_process::stream::err, expected, 2));
  child.close_stdin();
  const int status = child.finish();
  INFO(child.err());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(child.err() == expected + expected);
  CHECK(child.out() == "ready\nrestored\n");
}

TEST_CASE("the watchdog's default report goes to stderr, once per stall", "[handlers][watchdog]") {
  const child_run run = run_child({"watchdog"});
  CHECK(WIFEXITED(run.status));
  CHECK(run.out == "stalls found: 1 0 0\n");
  CHECK(run.err ==
        "await-tree watchdog: task [worker 1] has been waiting 12.000s at \"read block 7\"\n"
        "worker 1 [12.000s]\n"
        "  read block 7 [!!! 12.000s]\n\n");
}

TEST_CASE("dumps without a global registry say so, in text and in JSON", "[handlers][dump]") {
  const child_run run = run_child({"dump-without-registry"});
  CHECK(WIFEXITED(run.status));
  CHECK(run.out ==
        "await-tree: no global registry (call await_tree::init_global_registry())\n"
        "{\"error\":\"no global registry (call await_tree::init_global_registry())\"}\n");
}

namespace {

/// What the crash handlers write for each tree of `reg` (without allocating,
/// through a small buffer so that it is flushed many times), read back from
/// a pipe.
std::string dying_dump_text(const await_tree::registry& reg) {
  std::array<int, 2> fds{};
  if (::pipe(fds.data()) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  {
    std::array<char, 16> buffer;
    await_tree::detail::fd_writer out(fds[1], buffer.data(), buffer.size());
    await_tree::detail::registry_access::state(reg).try_visit_all(
        [&](const await_tree::any_key&, await_tree::detail::tree_state& t) {
          await_tree::detail::write_tree(out, t, {}, await_tree::unlimited);
        },
        [] {});
  }
  ::close(fds[1]);
  std::string text;
  std::array<char, 256> chunk;
  for (ssize_t n; (n = ::read(fds[0], chunk.data(), chunk.size())) > 0;) {
    text.append(chunk.data(), static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  return text;
}

}  // namespace

TEST_CASE("the crash handlers render a live tree as tree::to_string() does", "[handlers][crash]") {
  single_task t;
  rt::event data;
  auto query = [&]() -> rt::task<> { co_await instrument(data.wait(), "wait for data"); };
  auto handle = [&]() -> rt::task<> {
    auto q = instrument(query(), "query");
    co_await instrument(rt::when_any(q, instrument(t.ex.sleep(10ms), "timeout")), "select");
    co_await instrument(t.ex.sleep(1ms), "pause");  // the query is detached meanwhile
    // The query is re-attached after "log warning" but started long before:
    // it comes first. The two sleeps start at once: creation order.
    co_await instrument(rt::when_all(instrument(t.ex.sleep(5ms), "log warning"), q,
                                     instrument(t.ex.sleep(5ms), "flush metrics")),
                        "join");
  };
  t.spawn(handle());
  for (const auto instant : {0ms, 10ms, 11ms}) {
    t.ex.run_until(instant);
    INFO("at " << instant.count() << " ms");
    CHECK(dying_dump_text(t.reg) == t.text());
  }
  CHECK_THAT(t.text(), Catch::StartsWith("root [11.000ms]\n  join [0ns]\n    query [11.000ms]\n"));
  data.set();
  CHECK(t.finishes());
}

TEST_CASE("current_tree() in a catch block shows where the exception was caught",
          "[handlers][current]") {
  single_task t;
  std::optional<await_tree::tree> in_catch;
  auto fetch = [&]() -> rt::task<> {
    co_await instrument(t.ex.sleep(1ms), "read");
    throw std::runtime_error("disk gone");
  };
  auto handler = [&]() -> rt::task<> {
    try {
      co_await instrument(fetch(), "fetch");
    } catch (const std::runtime_error&) {
      in_catch = await_tree::current_tree();
    }
  };
  auto body = [&]() -> rt::task<> { co_await instrument(handler(), "handle request"); };
  t.spawn(body());
  CHECK(t.finishes());
  REQUIRE(in_catch);
  CHECK(in_catch->to_string() == "root [1.000ms]\n  handle request [1.000ms]  <== current\n");
}

namespace {

/// A path for a test's file, removed when it goes.
class temp_path {
 public:
  temp_path() {
    std::string pattern = "/tmp/await_tree_test_XXXXXX";
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
    ::close(fd);
    path_ = pattern;
  }
  temp_path(const temp_path&) = delete;
  temp_path& operator=(const temp_path&) = delete;
  ~temp_path() { std::remove(path_.c_str()); }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// The file's lines, once it has `count` of them (waiting at most a
  /// minute, for a broken dump thread).
  [[nodiscard]] std::vector<std::string> wait_for_lines(std::size_t count) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    std::vector<std::string> lines;
    do {
      lines.clear();
      std::ifstream in(path_);
      for (std::string line; std::getline(in, line);) lines.push_back(line);
      if (lines.size() >= count) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } while (std::chrono::steady_clock::now() < deadline);
    return lines;
  }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("a signal_dump appends each dump to its file, JSON a line each", "[handlers][signal]") {
  single_task t;
  rt::event done;
  t.spawn([](rt::event& e) -> rt::task<> { co_await instrument(e.wait(), "wait 1"); }(done));
  t.ex.run_until(3s);
  const temp_path file;
  {
    const await_tree::signal_dump on_usr2(
        SIGUSR2, {.dump = {.source = t.reg,
                           .format = await_tree::dump_format::json,
                           .grouped = true,
                           .grouping = {.normalize = &await_tree::mask_digits}},
                  .path = file.path()});
    REQUIRE(::raise(SIGUSR2) == 0);
    REQUIRE(file.wait_for_lines(1).size() == 1);
    REQUIRE(::raise(SIGUSR2) == 0);
    const auto lines = file.wait_for_lines(2);
    REQUIRE(lines.size() == 2);
    const auto dump = nlohmann::json::parse(lines[1]);
    CHECK(dump["groups"][0]["count"] == 1);
    CHECK(dump["groups"][0]["keys"] == nlohmann::json::array({"0"}));
    CHECK(dump["groups"][0]["tree"]["children"][0]["span"]["name"] == "wait #");
  }
  done.set();
  CHECK(t.finishes());
}

namespace {
void do_nothing_on_signal(int) {}
}  // namespace

TEST_CASE("a signal_dump refuses what it cannot serve and restores what was there",
          "[handlers][signal]") {
  CHECK_THROWS_AS(await_tree::signal_dump(0), std::invalid_argument);
  CHECK_THROWS_AS(await_tree::signal_dump(NSIG), std::invalid_argument);
  CHECK_THROWS_AS(await_tree::signal_dump(SIGSEGV), std::invalid_argument);
  CHECK_THROWS_AS(await_tree::signal_dump(SIGKILL), std::system_error);

  struct sigaction mine {};
  mine.sa_handler = &do_nothing_on_signal;
  sigemptyset(&mine.sa_mask);
  struct sigaction before {};
  REQUIRE(::sigaction(SIGUSR2, &mine, &before) == 0);
  {
    const await_tree::signal_dump first(SIGUSR2);
    CHECK(first.signal() == SIGUSR2);
    CHECK_THROWS_AS(await_tree::signal_dump(SIGUSR2), std::invalid_argument);
  }
  struct sigaction after {};
  REQUIRE(::sigaction(SIGUSR2, &before, &after) == 0);
  CHECK(after.sa_handler == &do_nothing_on_signal);
  const await_tree::signal_dump again(SIGUSR2);  // free to use again
  CHECK(again.signal() == SIGUSR2);
}

namespace {

/// What constructing a signal_dump that appends to `path` throws; empty
/// when it does not throw.
std::string refusal_of(const std::string& path) {
  try {
    const await_tree::signal_dump on_usr2(SIGUSR2, {.path = path});
  } catch (const std::system_error& e) {
    return e.what();
  }
  return {};
}

std::uintmax_t size_of(const std::string& path) { return std::filesystem::file_size(path); }

}  // namespace

TEST_CASE("a signal_dump creates its file private to this user", "[handlers][signal][file]") {
  const temp_dir dir;
  const std::string file = dir / "tasks.txt";
  const mode_t previous_umask = ::umask(0);  // the most permissive umask
  const std::string refusal = refusal_of(file);
  ::umask(previous_umask);
  CHECK(refusal.empty());
  struct stat status {};
  REQUIRE(::stat(file.c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0600);
  CHECK(S_ISREG(status.st_mode));
}

TEST_CASE("a signal_dump refuses a symbolic link, a FIFO and another user's file",
          "[handlers][signal][file]") {
  const temp_dir dir;
  const std::string target = dir / "target";
  { std::ofstream(target) << "the attacker's file\n"; }
  const std::string link = dir / "tasks.txt";
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  CHECK_THAT(refusal_of(link), Catch::Contains("tasks.txt: it is a symbolic link"));
  CHECK(size_of(target) == 20);  // nothing appended

  // A dangling link too: following it would create a file of the attacker's
  // choosing.
  const std::string dangling = dir / "dangling.txt";
  REQUIRE(::symlink((dir / "created").c_str(), dangling.c_str()) == 0);
  CHECK_THAT(refusal_of(dangling), Catch::Contains("it is a symbolic link"));
  CHECK_FALSE(std::filesystem::exists(dir / "created"));

  // A FIFO without a reader would block a plain open.
  const std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(refusal_of(fifo), Catch::Contains("fifo: it"));

  const std::string directory_path = dir / "";
  CHECK_THAT(refusal_of(directory_path), Catch::Contains("it cannot be opened"));

  // Only root can give a file away; other users skip this part.
  if (::geteuid() == 0) {
    const std::string theirs = dir / "theirs.txt";
    { std::ofstream(theirs) << "x"; }
    REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    CHECK_THAT(refusal_of(theirs), Catch::Contains("it is owned by another user"));
    CHECK(size_of(theirs) == 1);
  }
}

TEST_CASE("a dump file replaced by a symbolic link later is refused, on stderr",
          "[handlers][signal][file]") {
  const temp_dir dir;
  const std::string file = dir / "tasks.txt";
  const std::string target = dir / "target";
  { std::ofstream(target) << ""; }
  child_process child({AWAIT_TREE_DUMP_CHILD, "signal-dump", file});
  REQUIRE(child.wait_for(child_process::stream::out, "ready\n"));
  REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
  // The dump goes to the file, not to stderr.
  const auto dumped = [&] { return std::filesystem::exists(file) && size_of(file) > 0; };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!dumped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(dumped());

  REQUIRE(std::filesystem::remove(file));
  REQUIRE(::symlink(target.c_str(), file.c_str()) == 0);
  REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
  REQUIRE(child.wait_for(child_process::stream::err, "\n"));
  child.close_stdin();
  const int status = child.finish();
  CHECK(WIFEXITED(status));
  CHECK(child.err() == fmt::format("await-tree: the dump on signal {} failed: await-tree: refusing "
                                   "the dump file {}: it is a symbolic link: {}\n",
                                   SIGUSR1, file, std::strerror(ELOOP)));
  CHECK(size_of(target) == 0);
}
