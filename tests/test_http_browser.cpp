// SPDX-License-Identifier: Apache-2.0
//
// The live page in a real browser: headless Chromium loads it from a server
// in front of a thousand running tasks, runs its script, and the test reads
// the rendered DOM (--dump-dom) and takes the README's screenshot.

#include <await_tree/http.hpp>

#include "child_process.hpp"
#include "http_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

/// A fresh browser profile per run, removed afterwards.
class temporary_directory {
 public:
  temporary_directory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "await-tree-chromium.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temporary_directory(const temporary_directory&) = delete;
  temporary_directory& operator=(const temporary_directory&) = delete;
  ~temporary_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// Runs headless Chromium on `url` with `action` (--dump-dom, --screenshot=...);
/// its standard output. Without these switches it would reach for the network.
std::string run_chromium(const std::string& url, const std::vector<std::string>& action) {
  const temporary_directory profile;
  std::vector<std::string> args = {AWAIT_TREE_CHROMIUM, "--headless", "--no-sandbox",
                                   "--disable-gpu", "--disable-background-networking",
                                   "--disable-component-update", "--disable-sync", "--no-first-run",
                                   "--user-data-dir=" + profile.path().string(),
                                   // Runs timers and fetches for 4 s of page
                                   // time (a refresh or two) before the action.
                                   "--virtual-time-budget=4000"};
  args.insert(args.end(), action.begin(), action.end());
  args.push_back(url);
  test::child_process chromium(args);
  const int status = chromium.finish();
  INFO(chromium.err());
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return chromium.out();
}

/// The page's DOM once its script has run, which it says in `data-state`.
std::string rendered(std::uint16_t port, const std::string& fragment = "",
                     std::string_view state = "ready") {
  const std::string dom =
      run_chromium(fmt::format("http://127.0.0.1:{}/{}", port, fragment), {"--dump-dom"});
  REQUIRE(dom.find(fmt::format("<main id=\"tasks\" data-state=\"{}\">", state)) !=
          std::string::npos);
  return dom;
}

std::size_t sections_in(const std::string& dom) {
  return test::child_process::count(dom, "<section class=\"task\">");
}

/// The keys of the rendered tasks, in page order.
std::vector<std::string> rendered_keys(const std::string& dom) {
  std::vector<std::string> keys;
  constexpr std::string_view open = "<span class=\"key\">[";
  for (auto pos = dom.find(open); pos != std::string::npos; pos = dom.find(open, pos + 1)) {
    const auto start = pos + open.size();
    keys.push_back(dom.substr(start, dom.find("]</span>", start) - start));
  }
  return keys;
}

/// A thousand tasks (and the hostile one) behind a server of its own, old
/// enough that the waiting ones are past the 500 ms threshold for `!!!`.
class page_server {
 public:
  explicit page_server(std::string token = "")
      : server_({.source = tasks_.registry(), .bearer_token = std::move(token)}) {
    std::this_thread::sleep_for(600ms);
  }
  [[nodiscard]] std::uint16_t port() const noexcept { return server_.port(); }

 private:
  test::running_tasks tasks_{1000};
  await_tree::http::server server_;
};

constexpr std::string_view untouched_title = "<title>await-tree: live tasks</title>";

}  // namespace

TEST_CASE("browser: a thousand tasks are grouped by default", "[browser]") {
  page_server s;
  const std::string dom = rendered(s.port());
  // The ticking tasks make a group of 100, or more groups when a snapshot
  // catches some of them running; the waiting ones always group alike.
  CHECK(dom.find("1001 tasks in ") != std::string::npos);
  for (const char* count : {">500 tasks<", ">400 tasks<", ">1 task<"}) {
    INFO(count);
    CHECK(dom.find(count) != std::string::npos);
  }
  CHECK(sections_in(dom) >= 4);
  // Long waits flagged, the long-running lease not; spreads per node.
  CHECK(
      dom.find("<span class=\"name\">fetch rows</span> <span class=\"elapsed stuck\">[!!! min ") !=
      std::string::npos);
  CHECK(dom.find("<span class=\"name\">refresh lease</span> <span class=\"elapsed\">[min ") !=
        std::string::npos);
  CHECK(dom.find("<span class=\"name\">wait for replica #</span>") != std::string::npos);
  // Nodes with children are collapsible.
  CHECK(dom.find(
            "<details open=\"\"><summary><span class=\"line\"><span class=\"name\">query</span>") !=
        std::string::npos);
}

TEST_CASE("browser: every task's tree, hostile names shown as text", "[browser]") {
  page_server s;
  const std::string dom = rendered(s.port(), "#grouped=0");
  CHECK(sections_in(dom) == 1000);  // the ungrouped view's limit
  CHECK(dom.find("Showing the first 1000 of 1001 tasks; search") != std::string::npos);
  const auto keys = rendered_keys(dom);
  REQUIRE(keys.size() == 1000);
  CHECK(keys[1] == "task 0");
  CHECK(keys[2] == "task 1");
  CHECK(
      dom.find(
          "<span class=\"key\">[task 7]</span></h2><ul class=\"tree\"><li class=\"node\"><details "
          "open=\"\"><summary><span class=\"line\"><span class=\"name\">task 7</span>") !=
      std::string::npos);
  CHECK(dom.find("<span class=\"name\">tick</span>") != std::string::npos);
  // The hostile key and span: text, no element, and their script never ran.
  CHECK(keys[0] == "&lt;img src=x onerror=\"document.title='pwned'\"&gt;");
  CHECK(dom.find("&lt;script&gt;document.title='pwned by span'&lt;/script&gt;\"quoted\"") !=
        std::string::npos);
  CHECK(dom.find("<img") == std::string::npos);
  CHECK(test::child_process::count(dom, "<script") == 1);  // the page's own
  CHECK(dom.find(untouched_title) != std::string::npos);
}

TEST_CASE("browser: the search box filters by key and by span name", "[browser]") {
  page_server s;
  SECTION("keys") {
    const std::string dom = rendered(s.port(), "#grouped=0&q=task%2099");
    const std::vector<std::string> expected = {"task 99",  "task 990", "task 991", "task 992",
                                               "task 993", "task 994", "task 995", "task 996",
                                               "task 997", "task 998", "task 999"};
    CHECK(rendered_keys(dom) == expected);
    CHECK(dom.find("1001 tasks, 11 shown") != std::string::npos);
  }
  SECTION("span names, ignoring case") {
    const std::string dom = rendered(s.port(), "#grouped=0&q=REPLICA%203");
    std::vector<std::string> expected;
    for (int id = 0; id < 1000; ++id) {
      if (id % 10 != 0 && id % 2 == 0 && id % 7 == 3)
        expected.push_back(fmt::format("task {}", id));
    }
    CHECK(rendered_keys(dom) == expected);
  }
  SECTION("nothing matches") {
    CHECK(rendered(s.port(), "#q=no%20such%20thing").find("Nothing matches the search.") !=
          std::string::npos);
  }
}

TEST_CASE("browser: sorted by longest waiting", "[browser]") {
  page_server s;
  const auto keys = rendered_keys(rendered(s.port(), "#grouped=0&order=longest_waiting_first"));
  REQUIRE(keys.size() == 1000);
  // The ticking tasks (task 0, 10, ...) have waited a millisecond at most: last.
  const auto ticking = [](const std::string& key) {
    return key.starts_with("task ") && std::stoi(key.substr(5)) % 10 == 0;
  };
  CHECK(!ticking(keys.front()));
  CHECK(ticking(keys.back()));
}

TEST_CASE("browser: the token from the fragment, and the error without it", "[browser]") {
  page_server s("s3cret");
  CHECK(sections_in(rendered(s.port(), "#token=s3cret")) >= 4);
  const std::string refused = rendered(s.port(), "", "error");
  CHECK(
      refused.find(
          "<span id=\"status\" class=\"error\">update failed: 401 missing or wrong bearer token") !=
      std::string::npos);
  CHECK(sections_in(refused) == 0);
}

TEST_CASE("browser: the README's screenshot", "[browser]") {
  page_server s;
  const std::string file = AWAIT_TREE_SCREENSHOT;
  std::filesystem::remove(file);
  run_chromium(fmt::format("http://127.0.0.1:{}/#grouped=1", s.port()),
               {"--hide-scrollbars", "--window-size=1000,560", "--screenshot=" + file});
  std::ifstream png(file, std::ios::binary);
  std::string signature(8, '\0');
  png.read(signature.data(), 8);
  CHECK(signature == "\x89PNG\r\n\x1a\n");
}
