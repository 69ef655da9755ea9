// SPDX-License-Identifier: Apache-2.0
//
// The HTTP endpoint (include/await_tree/http.hpp), hit with real requests over
// loopback while a thousand tasks run: endpoints, query options, the limits,
// and floods of bad requests and half-open connections.

#include <await_tree/http.hpp>

#include "http_support.hpp"

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using await_tree::http::server_options;
using nlohmann::json;

constexpr int task_count = 1000;
constexpr std::size_t all_tasks = task_count + 1;  // and the hostile one

/// A server on an io_context run by two threads (handlers of different
/// connections may then run on either), in front of running tasks.
class served {
 public:
  explicit served(server_options options = {}) : server_(io_, with_source(std::move(options))) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  served(const served&) = delete;
  served& operator=(const served&) = delete;
  ~served() {
    server_.stop();
    for (auto& t : threads_) t.join();  // run() returns once every connection is closed
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return server_.port(); }
  [[nodiscard]] const await_tree::registry& registry() const noexcept { return tasks_.registry(); }
  void stop() { server_.stop(); }

 private:
  server_options with_source(server_options options) const {
    options.source = tasks_.registry();
    return options;
  }

  test::running_tasks tasks_{task_count};
  asio::io_context io_;
  await_tree::http::server server_;
  std::vector<std::thread> threads_;
};

json get_json(std::uint16_t port, const std::string& target) {
  const auto r = test::get(port, target);
  REQUIRE(r.status == 200);
  REQUIRE(r.has_header("Content-Type: application/json"));
  return json::parse(r.body);  // throws, failing the test, on invalid JSON
}

std::vector<std::string> keys_of(const json& dump) {
  std::vector<std::string> keys;
  for (const auto& t : dump.at("tasks")) keys.push_back(t.at("key").get<std::string>());
  return keys;
}

/// The JSON counterpart of await_tree::longest_wait: the age of the oldest
/// leaf that is not long-running.
std::int64_t longest_wait(const json& node) {
  const auto& children = node.at("children");
  if (children.empty()) {
    return node.at("span").at("is_long_running").get<bool>()
               ? 0
               : node.at("elapsed_ns").get<std::int64_t>();
  }
  std::int64_t oldest = 0;
  for (const auto& child : children) oldest = std::max(oldest, longest_wait(child));
  return oldest;
}

}  // namespace

TEST_CASE("http: the endpoints serve the page, both dumps and health", "[http]") {
  served s;
  const auto health = test::get(s.port(), "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");

  const auto page = test::get(s.port(), "/");
  CHECK(page.status == 200);
  CHECK(page.has_header("Content-Type: text/html; charset=utf-8"));
  // The policy's nonce is the one the page's script carries.
  const auto nonce_at = page.head.find("script-src 'nonce-");
  REQUIRE(nonce_at != std::string::npos);
  const std::string nonce = page.head.substr(nonce_at + 18, 32);
  CHECK(page.body.find(fmt::format("<script nonce=\"{}\">", nonce)) != std::string::npos);
  CHECK(page.body.find("data-long-running-ns=\"500000000\"") != std::string::npos);
  CHECK(test::get(s.port(), "/").head.find(nonce) == std::string::npos);  // fresh per page

  const auto text = test::get(s.port(), "/tasks.txt");
  CHECK(text.status == 200);
  CHECK(text.has_header("Content-Type: text/plain; charset=utf-8"));
  CHECK(text.body.find("[task 0]\ntask 0 [") != std::string::npos);
  CHECK(text.body.find("[task 999]\ntask 999 [") != std::string::npos);
  CHECK(text.body.find("    fetch rows [") != std::string::npos);

  const json dump = get_json(s.port(), "/tasks.json");
  CHECK(dump.at("tasks").size() == all_tasks);
  CHECK(dump.at("omitted_tasks") == 0);
  const auto keys = keys_of(dump);
  // Natural order ('<' sorts before letters).
  CHECK(std::vector(keys.begin(), keys.begin() + 4) ==
        std::vector<std::string>{std::string(test::hostile_key), "task 0", "task 1", "task 2"});
  CHECK(std::count(keys.begin(), keys.end(), std::string(test::hostile_key)) == 1);
  // The hostile span survives as data (its bad byte as U+FFFD).
  const std::string dumped = dump.dump();
  CHECK(dumped.find(
            "<script>document.title='pwned by span'</script>\\\"quoted\\\" \\u0001 \xEF\xBF\xBD") !=
        std::string::npos);
}

TEST_CASE("http: HEAD gets the headers without the body", "[http]") {
  served s;
  const auto raw = test::send_and_receive(s.port(), "HEAD /tasks.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto r = test::parse_response(raw);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(r.head.find("Content-Length: 0\r\n") == std::string::npos);
}

TEST_CASE("http: the query options are those of dump_options", "[http]") {
  served s;
  SECTION("limit") {
    const json dump = get_json(s.port(), "/tasks.json?limit=10");
    CHECK(dump.at("tasks").size() == 10);
    CHECK(dump.at("omitted_tasks") == all_tasks - 10);
    CHECK(
        test::get(s.port(), "/tasks.txt?limit=1").body.find("... and 1000 more tasks (limit 1)") !=
        std::string::npos);
  }
  SECTION("key: the tasks whose key contains the text, percent-decoded") {
    const json dump = get_json(s.port(), "/tasks.json?key=task%2099");
    CHECK(keys_of(dump) == std::vector<std::string>{"task 99", "task 990", "task 991", "task 992",
                                                    "task 993", "task 994", "task 995", "task 996",
                                                    "task 997", "task 998", "task 999"});
    CHECK(get_json(s.port(), "/tasks.json?key=task+7").at("tasks").size() == 111);
  }
  SECTION("grouped, with digits masked") {
    const json dump = get_json(s.port(), "/tasks.json?grouped=1&mask_digits=1");
    std::size_t tasks = 0;
    for (const auto& g : dump.at("groups")) tasks += g.at("count").get<std::size_t>();
    CHECK(tasks == all_tasks);
    CHECK(dump.at("omitted_tasks") == 0);
    // Ticking, the join, and seven replicas: digits masked, one "wait for replica #".
    const auto text = test::get(s.port(), "/tasks.txt?grouped=true&mask_digits=1").body;
    CHECK(text.find("\n  wait for replica # [") != std::string::npos);
    CHECK(text.find("wait for replica 3") == std::string::npos);
  }
  SECTION("longest waiting first: by the age of each task's oldest waiting leaf") {
    const json dump = get_json(s.port(), "/tasks.json?order=longest_waiting_first");
    REQUIRE(dump.at("tasks").size() == all_tasks);
    std::int64_t previous = std::numeric_limits<std::int64_t>::max();
    for (const auto& t : dump.at("tasks")) {
      const std::int64_t wait = longest_wait(t.at("tree").at("tree"));
      CHECK(wait <= previous);
      previous = wait;
    }
  }
  SECTION("bad values and unknown names are refused with a reason") {
    for (const char* target :
         {"/tasks.json?limit=ten", "/tasks.json?limit=-1",
          "/tasks.json?limit=", "/tasks.txt?order=random", "/tasks.txt?grouped=yes",
          "/tasks.txt?colour=red", "/tasks.txt?key=%zz", "/tasks.txt?key=%4"}) {
      const auto r = test::get(s.port(), target);
      INFO(target);
      CHECK(r.status == 400);
      CHECK(!r.body.empty());
    }
  }
}

TEST_CASE("http: unknown paths, bad methods and malformed requests", "[http]") {
  served s;
  CHECK(test::get(s.port(), "/tasks").status == 404);
  CHECK(test::get(s.port(), "/../etc/passwd").status == 404);
  const auto post = test::parse_response(
      test::send_and_receive(s.port(), "POST /tasks.json HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
  CHECK(post.status == 405);
  CHECK(post.has_header("Allow: GET, HEAD"));
  for (const char* request :
       {"GET /\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET tasks.txt HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon here\r\n\r\n", "G\x01T / HTTP/1.1\r\n\r\n",
        "GET /\x7f HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",
        "GET /tasks.txt HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n"}) {
    INFO(request);
    CHECK(test::parse_response(test::send_and_receive(s.port(), request)).status == 400);
  }
}

TEST_CASE("http: a request head over 8 KiB gets 413 and a closed connection", "[http]") {
  served s;
  const auto request = [](std::size_t size) {  // a head of exactly `size` bytes
    const std::string start = "GET /healthz HTTP/1.1\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    return start + std::string(size - start.size() - end.size(), 'a') + end;
  };
  CHECK(test::parse_response(test::send_and_receive(s.port(), request(8192))).status == 200);
  test::client_socket big(s.port());
  big.send(request(8193));  // one byte over
  bool closed = false;
  const auto r = test::parse_response(big.receive_all(&closed));
  CHECK(r.status == 413);
  CHECK(closed);
  // A client that never ends its head and keeps sending: cut off at the limit.
  test::client_socket endless(s.port());
  endless.send("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 100 && endless.send("X-More: " + std::string(1000, 'b') + "\r\n"); ++i) {
  }
  CHECK(test::parse_response(endless.receive_all(&closed)).status == 413);
  CHECK(closed);
}

TEST_CASE("http: with a bearer token the dumps need it", "[http]") {
  served s({.bearer_token = "s3cret-token"});
  CHECK(test::get(s.port(), "/tasks.json").status == 401);
  CHECK(test::get(s.port(), "/tasks.json").has_header("WWW-Authenticate: Bearer"));
  CHECK(test::get(s.port(), "/tasks.txt", "Authorization: Bearer wrong\r\n").status == 401);
  CHECK(test::get(s.port(), "/tasks.txt", "Authorization: Bearer s3cret-tokeN\r\n").status == 401);
  CHECK(test::get(s.port(), "/tasks.txt", "Authorization: Bearer s3cret-token-\r\n").status == 401);
  CHECK(test::get(s.port(), "/tasks.txt", "Authorization: Basic s3cret-token\r\n").status == 401);
  CHECK(test::get(s.port(), "/tasks.txt", "Authorization: Bearer s3cret-token\r\n").status == 200);
  CHECK(test::get(s.port(), "/tasks.json", "authorization:   bearer s3cret-token  \r\n").status ==
        200);
  // No task data in these: served without the token.
  CHECK(test::get(s.port(), "/healthz").status == 200);
  CHECK(test::get(s.port(), "/").status == 200);
}

TEST_CASE("http: slow and silent clients time out", "[http]") {
  served s({.request_timeout = 200ms});
  const auto started = std::chrono::steady_clock::now();
  test::client_socket silent(s.port());
  test::client_socket slow(s.port());
  slow.send("GET /healthz HTTP/1.1\r\n");
  bool closed = false;
  CHECK(silent.receive_all(&closed).empty());
  CHECK(closed);
  CHECK(slow.receive_all(&closed).empty());
  CHECK(closed);
  // Well before the client's own bound of 20 s.
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(test::get(s.port(), "/healthz").status == 200);
}

TEST_CASE("http: connections over the limit get 503 until others close", "[http]") {
  constexpr int limit = 8;
  served s({.max_connections = limit, .request_timeout = 60s});
  std::vector<std::unique_ptr<test::client_socket>> idle;
  for (int i = 0; i < limit; ++i) idle.push_back(std::make_unique<test::client_socket>(s.port()));
  const auto over = test::get(s.port(), "/healthz");
  CHECK(over.status == 503);
  idle.clear();  // the server sees them close, and takes new ones again
  int status = 0;
  for (int attempt = 0; attempt < 200 && status != 200; ++attempt) {
    status = test::get(s.port(), "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(10ms);
  }
  CHECK(status == 200);
}

TEST_CASE("http: stop() closes the listener and every open connection", "[http]") {
  served s({.request_timeout = 60s});
  test::client_socket idle(s.port());
  test::client_socket partial(s.port());
  partial.send("GET / HTTP/1.1\r\n");
  CHECK(test::get(s.port(), "/healthz").status == 200);  // both were accepted before this one
  s.stop();
  bool closed = false;
  idle.receive_all(&closed);
  CHECK(closed);
  partial.receive_all(&closed);
  CHECK(closed);
  CHECK_THROWS_AS(test::client_socket(s.port()), std::system_error);  // refused
}

TEST_CASE("http: a server on a thread of its own", "[http]") {
  test::running_tasks tasks(10);
  std::uint16_t port = 0;
  {
    await_tree::http::server own({.source = tasks.registry()});
    port = own.port();
    CHECK(test::get(port, "/tasks.txt").body.find("[task 9]\n") != std::string::npos);
  }  // the destructor stops it and joins its thread
  CHECK_THROWS_AS(test::client_socket(port), std::system_error);
}

TEST_CASE("http: the global registry by default, and a clear error without one", "[http]") {
  // Whether some other test made the global registry already is not known
  // here; either way the answer is valid and says what it serves.
  await_tree::http::server own({});
  const auto r = test::get(own.port(), "/tasks.json");
  CHECK(r.status == 200);
  const json dump = json::parse(r.body);
  if (await_tree::global_registry() == nullptr) {
    CHECK(dump.at("error").get<std::string>().find("no global registry") != std::string::npos);
  } else {
    CHECK(dump.contains("tasks"));
  }
}

TEST_CASE("http: a bad address is refused at construction", "[http]") {
  asio::io_context io;
  CHECK_THROWS_AS(await_tree::http::server(io, {.address = "not an address"}), std::system_error);
}

TEST_CASE("http: a flood of bad requests and half-open connections while tasks run", "[http]") {
  served s({.max_connections = 32, .request_timeout = 300ms});
  const std::string before = test::get(s.port(), "/tasks.txt?key=task%201&limit=1").body;
  std::atomic<int> answered{0};
  std::atomic<int> bad{0};
  const auto flood = [&](unsigned seed) {
    std::mt19937 random(seed);
    for (int i = 0; i < 150; ++i) {
      try {
        test::client_socket c(s.port());
        switch (random() % 6) {
          case 0: {  // garbage bytes
            std::string junk(random() % 3000, '\0');
            for (char& ch : junk) ch = static_cast<char>(random());
            c.send(junk + "\r\n\r\n");
            break;
          }
          case 1:  // an oversized head
            c.send("GET / HTTP/1.1\r\nX: " + std::string(9000, 'x'));
            break;
          case 2:  // half a request, then gone
            c.send("GET /tasks.json HTTP/1.1\r\nHo");
            continue;
          case 3:  // connects and leaves at once
            continue;
          case 4:  // a request and its body, for a method the server refuses
            c.send("DELETE /tasks.json HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
            break;
          default:  // a good request, half the time closed before the answer
            c.send("GET /tasks.json?limit=5 HTTP/1.1\r\n\r\n");
            if (random() % 2 == 0) continue;
            break;
        }
        const auto r = test::parse_response(c.receive_all());
        if (r.status == 200 || r.status == 400 || r.status == 405 || r.status == 413 ||
            r.status == 503) {
          ++answered;
        } else if (r.status != 0) {  // 0: reset by the server (junk without a head)
          ++bad;
        }
      } catch (const std::system_error&) {
        ++bad;  // a refused connection: the server stopped listening
      }
    }
  };
  // Half-open connections that never say a word, held through the flood.
  std::vector<std::unique_ptr<test::client_socket>> silent;
  for (int i = 0; i < 10; ++i) silent.push_back(std::make_unique<test::client_socket>(s.port()));
  std::thread a(flood, 1U);
  std::thread b(flood, 2U);
  // Meanwhile a well-behaved client is served.
  int served_ok = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = test::get(s.port(), "/tasks.json?limit=3");
    if (r.status == 200 && json::parse(r.body).at("tasks").size() == 3) ++served_ok;
  }
  a.join();
  b.join();
  CHECK(bad == 0);
  CHECK(answered > 0);
  CHECK(served_ok > 0);  // some may meet a full server (503)
  // The server still answers, and the tasks are as they were.
  const json after = get_json(s.port(), "/tasks.json");
  CHECK(after.at("tasks").size() == all_tasks);
  CHECK(test::get(s.port(), "/tasks.txt?key=task%201&limit=1").body.substr(0, 12) ==
        before.substr(0, 12));
}

TEST_CASE("http: request heads are parsed strictly", "[http]") {
  using namespace await_tree::http::detail;
  const auto parsed = parse_request_head(
      "GET /tasks.json?limit=3 HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer abc \r\n\r\n");
  REQUIRE(std::holds_alternative<request_head>(parsed));
  const auto& head = std::get<request_head>(parsed);
  CHECK(head.method == "GET");
  CHECK(head.path == "/tasks.json");
  CHECK(head.query == "limit=3");
  CHECK(head.authorization == "Bearer abc");
  CHECK(head_end("GET / HTTP/1.1\r\n\r\nrest") == 18U);
  CHECK(!head_end("GET / HTTP/1.1\r\n").has_value());
  CHECK(percent_decode("a%20b+c%2B") == "a b c+");
  CHECK(!percent_decode("%g0").has_value());
  CHECK(!percent_decode("abc%").has_value());
}
