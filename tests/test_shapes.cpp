// SPDX-License-Identifier: Apache-2.0
// Stress shapes: trees that are very deep, very wide, very many or that hold
// a very long name. Each is dumped in every form (text, both JSON forms,
// grouped), checked by the watchdog and written by the crash handler's dump;
// every output must be well formed, and each step's time is printed (the
// README's figures). Each TEST_CASE runs in a process of its own under
// CTest, so the peak memory printed at its end is that shape's.

#include <await_tree/await_tree.hpp>
#include <await_tree/crash_handlers.hpp>

#include "child_process.hpp"
#include "json_nesting.hpp"
#include "runtime/event.hpp"
#include "runtime/task.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <pthread.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

using await_tree::instrument;

namespace {

/// The sizes the issue asks for, divided by AWAIT_TREE_SHAPES_DIVISOR in the
/// slower configurations (tests/CMakeLists.txt says which).
constexpr std::uint32_t divisor = AWAIT_TREE_SHAPES_DIVISOR;
constexpr std::uint32_t deep_levels = 100'000 / divisor;
constexpr std::size_t wide_children = 100'000 / divisor;
// The million tasks, the slowest shape by far (45 s at a tenth under GCC's
// ThreadSanitizer), at a fortieth there.
constexpr std::size_t idle_tasks = 1'000'000 / (divisor == 1 ? 1 : 4 * divisor);
constexpr std::size_t long_name_bytes = std::size_t{10} << 20;

/// Runs `f` and prints how long it took, under `label`; returns what `f`
/// returns.
template <class F>
auto timed(std::string_view label, F f) {
  const auto start = std::chrono::steady_clock::now();
  const auto print = [&] {
    const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
    fmt::print("  {:<34} {:9.1f} ms\n", label, ms.count());
  };
  if constexpr (std::is_void_v<decltype(f())>) {
    f();
    print();
  } else {
    auto result = f();
    print();
    return result;
  }
}

void print_peak_memory(std::string_view shape) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  fmt::print("  {} done; peak RSS of the process: {} MiB\n", shape, usage.ru_maxrss / 1024);
}

std::size_t occurrences(std::string_view text, std::string_view part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string_view::npos;
       at = text.find(part, at + part.size())) {
    ++count;
  }
  return count;
}

/// Runs `f` on a thread with a 1 GiB stack: where symmetric transfer is not
/// a tail call (-O0, ASan), each level of a deep chain of coroutines takes
/// stack when it starts and when it completes.
void on_big_stack(std::function<void()> f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, std::size_t{1} << 30);
  pthread_t thread;
  const auto run = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  const int error = pthread_create(&thread, &attr, run, &f);
  pthread_attr_destroy(&attr);
  if (error != 0) throw std::runtime_error("pthread_create failed");
  pthread_join(thread, nullptr);
}

/// A temporary file, removed when destroyed.
struct temp_file {
  std::string path = fmt::format("/tmp/await_tree_shapes_{}_{}.out", getpid(), counter()++);
  ~temp_file() { std::remove(path.c_str()); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  [[nodiscard]] std::string read() const {
    std::string text;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return text;
    char chunk[65536];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) text.append(chunk, n);
    std::fclose(f);
    return text;
  }
};

/// The crash handler's dump of the global registry, written to a file, as
/// the handler writes it on a fatal signal (without dying afterwards).
std::string crash_dump_text() {
  temp_file file;
  std::FILE* f = std::fopen(file.path.c_str(), "wb");
  await_tree::detail::write_crash_dump(fileno(f), SIGSEGV);
  std::fclose(f);
  return file.read();
}

/// Python's json module must read the dump (its parser recurses once per
/// nesting level).
void check_python_parses(const std::string& json, std::size_t expected_nodes) {
  temp_file file;
  std::FILE* f = std::fopen(file.path.c_str(), "wb");
  std::fwrite(json.data(), 1, json.size(), f);
  std::fclose(f);
  test::child_process python({"/usr/bin/python3", "-c",
                              "import json, sys\n"
                              "dump = json.load(open(sys.argv[1]))\n"
                              "print(sum(len(t['tree']['nodes']) for t in dump['tasks']))\n",
                              file.path});
  CHECK(python.finish() == 0);
  CHECK(python.err().empty());
  CHECK(python.out() == fmt::format("{}\n", expected_nodes));
}

/// A text dump ends with a newline, and no line of it is indented past the
/// default indent limit.
void check_text_lines(const std::string& text) {
  const std::size_t max_indent = 2 * await_tree::format_limits{}.max_indent_depth;
  std::size_t start = 0;
  std::size_t bad = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    REQUIRE(end != std::string::npos);  // the text ends with a newline
    const std::string_view line(text.data() + start, end - start);
    const std::size_t indent = line.find_first_not_of(' ');
    if (indent != std::string_view::npos && indent > max_indent) ++bad;
    start = end + 1;
  }
  CHECK(bad == 0);
}

/// The dumps of the global registry in every form, checked, with times
/// printed. `nodes` is the node count of all trees together, `stalls` how
/// many tasks wait at a leaf that is not long-running.
void dump_every_way(std::size_t nodes, std::size_t groups, std::size_t stalls) {
  const await_tree::registry& reg = *await_tree::global_registry();
  const std::string text = timed("text dump", [] { return await_tree::dump_to_string(); });
  check_text_lines(text);
  fmt::print("    ({} bytes)\n", text.size());

  const std::string nested = timed("nested JSON dump", [] {
    return await_tree::dump_to_string({.format = await_tree::dump_format::json});
  });
  CHECK(timed("  validated (nlohmann)", [&] { return nlohmann::json::accept(nested); }));

  const std::string flat = timed("flat JSON dump", [] {
    return await_tree::dump_to_string({.format = await_tree::dump_format::flat_json});
  });
  CHECK(test::nesting_depth(flat) <= 8);
  CHECK(timed("  validated (nlohmann)", [&] { return nlohmann::json::accept(flat); }));
  CHECK(occurrences(flat, R"("parent":)") == nodes);  // escaped in names, so one per node
  fmt::print("    ({} bytes)\n", flat.size());

  const std::string grouped =
      timed("grouped text dump", [] { return await_tree::dump_to_string({.grouped = true}); });
  check_text_lines(grouped);
  const std::string grouped_json = timed("grouped flat JSON dump", [] {
    return await_tree::dump_to_string(
        {.format = await_tree::dump_format::flat_json, .grouped = true});
  });
  CHECK(nlohmann::json::parse(grouped_json)["groups"].size() == groups);

  std::size_t reported = 0;
  await_tree::watchdog dog({.source = reg,
                            .interval = std::chrono::milliseconds(0),
                            .threshold = std::chrono::nanoseconds(0),
                            .on_stall = [&](const await_tree::stall& s) {
                              temp_file report;
                              std::FILE* f = std::fopen(report.path.c_str(), "wb");
                              await_tree::print_stall(s, f);
                              std::fclose(f);
                              CHECK_THAT(report.read(),
                                         Catch::StartsWith("await-tree watchdog: task [0]"));
                              ++reported;
                            }});
  timed("watchdog check (print_stall)", [&] { return dog.check(); });
  CHECK(reported == stalls);

  const std::string crash = timed("crash handler's dump", [] { return crash_dump_text(); });
  CHECK_THAT(crash, Catch::StartsWith("await-tree: fatal signal"));
  CHECK_THAT(crash, Catch::Contains("await-tree: end of dump ("));
  CHECK(crash.size() <= await_tree::handler_max_bytes + 64 * 1024);
  fmt::print("    ({} bytes)\n", crash.size());
}

/// A chain of `levels` coroutines, each awaiting the next under "level".
rt::task<> nest(std::uint32_t levels, rt::event& done) {
  if (levels == 0) {
    co_await instrument(done.wait(), "leaf");
  } else {
    co_await instrument(nest(levels - 1, done), "level");
  }
}

/// Awaits a task under its root, standing in for a runtime's spawn.
template <class Task>
test::fire_and_forget spawn(await_tree::tree_root root, Task task, bool& finished) {
  co_await std::move(root).instrument(std::move(task));
  finished = true;
}

/// A when_all over `count` children, each waiting for `done`, started
/// inline in its await_suspend as a runtime's join starts its branches.
class fan_out {
 public:
  fan_out(std::size_t count, rt::event& done) : count_(count), done_(done) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> parent) {
    parent_ = parent;
    remaining_ = count_ + 1;  // +1: this call's own share
    for (std::size_t i = 0; i < count_; ++i) child();
    return --remaining_ != 0;
  }
  void await_resume() const noexcept {}

 private:
  test::fire_and_forget child() {
    co_await instrument(done_.wait(), "child");
    if (--remaining_ == 0) parent_.resume();
  }

  std::size_t count_;
  rt::event& done_;
  std::size_t remaining_ = 0;
  std::coroutine_handle<> parent_;
};

rt::task<> join_all(std::size_t count, rt::event& done) {
  fan_out join(count, done);
  co_await instrument(join, "join");
}

rt::task<> wait_named(std::string name, rt::event& done) {
  co_await instrument(done.wait(), std::move(name));
}

/// The global registry, emptied before and after each shape, and the event
/// that ends the shape's task.
struct shape_fixture {
  shape_fixture() {
    await_tree::init_global_registry();
    await_tree::global_registry()->clear();
  }
  ~shape_fixture() { await_tree::global_registry()->clear(); }
  shape_fixture(const shape_fixture&) = delete;
  shape_fixture& operator=(const shape_fixture&) = delete;

  rt::event done;
  bool finished = false;
};

}  // namespace

TEST_CASE("a chain of 100,000 coroutines dumps in linear time and size", "[shapes]") {
  shape_fixture shape;
  fmt::print("shape: {} levels deep\n", deep_levels);
  timed("build", [&] {
    on_big_stack([&] {
      spawn(await_tree::global_registry()->register_task(0, "deep"), nest(deep_levels, shape.done),
            shape.finished);
    });
  });
  const auto t = await_tree::global_registry()->get(0);
  REQUIRE(t.has_value());
  const std::size_t nodes = t->nodes().size();
  CHECK(nodes == deep_levels + 2);  // the root, the levels, the leaf
  CHECK(t->nodes().back().depth == deep_levels + 1);

  const std::string text = timed("tree::to_string", [&] { return t->to_string(); });
  CHECK_THAT(text, Catch::EndsWith(
                       fmt::format("{}[depth {}] leaf [", std::string(128, ' '), deep_levels + 1) +
                       text.substr(text.rfind('[') + 1)));
  CHECK(text.size() < nodes * 180);  // linear: at most the indent limit and a label a line

  dump_every_way(nodes, 1, 1);
  const std::string flat =
      await_tree::dump_to_string({.format = await_tree::dump_format::flat_json});
  timed("flat JSON parsed by Python", [&] { check_python_parses(flat, nodes); });

  on_big_stack([&] { shape.done.set(); });
  CHECK(shape.finished);
  print_peak_memory("deep");
}

TEST_CASE("one join of 100,000 children dumps in linear time and size", "[shapes]") {
  shape_fixture shape;
  fmt::print("shape: one join of {} children\n", wide_children);
  timed("build", [&] {
    spawn(await_tree::global_registry()->register_task(0, "wide"),
          join_all(wide_children, shape.done), shape.finished);
  });
  const auto t = await_tree::global_registry()->get(0);
  REQUIRE(t.has_value());
  CHECK(t->nodes().size() == wide_children + 2);
  dump_every_way(wide_children + 2, 1, 1);
  timed("wake every child", [&] { shape.done.set(); });
  CHECK(shape.finished);
  print_peak_memory("wide");
}

TEST_CASE("a million registered idle tasks dump in linear time and size", "[shapes]") {
  shape_fixture shape;
  fmt::print("shape: {} idle tasks\n", idle_tasks);
  std::vector<await_tree::tree_root> roots;
  roots.reserve(idle_tasks);
  timed("register", [&] {
    for (std::size_t i = 0; i < idle_tasks; ++i) {
      roots.push_back(await_tree::global_registry()->register_task(i, "idle"));
    }
  });
  dump_every_way(idle_tasks, 1, 0);
  timed("drop", [&] { roots.clear(); });
  print_peak_memory("idle");
}

TEST_CASE("a 10 MB span name is shortened in text and whole in JSON", "[shapes]") {
  shape_fixture shape;
  fmt::print("shape: a name of {} bytes\n", long_name_bytes);
  spawn(await_tree::global_registry()->register_task(0, "long name"),
        wait_named(std::string(long_name_bytes, 'x'), shape.done), shape.finished);
  const auto t = await_tree::global_registry()->get(0);
  REQUIRE(t.has_value());
  const std::string text = timed("tree::to_string", [&] { return t->to_string(); });
  CHECK(text.find(fmt::format("  {}... ({} bytes) [", std::string(1024, 'x'), long_name_bytes)) !=
        std::string::npos);
  CHECK(text.size() < 2048);
  const std::string json = timed("tree::to_json", [&] { return t->to_json(); });
  CHECK(nlohmann::json::parse(json)["tree"]["children"][0]["span"]["name"].get<std::string>() ==
        std::string(long_name_bytes, 'x'));
  dump_every_way(2, 1, 1);
  shape.done.set();
  CHECK(shape.finished);
  print_peak_memory("long name");
}
