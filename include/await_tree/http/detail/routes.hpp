// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/config.hpp>
#include <await_tree/dump.hpp>
#include <await_tree/http/detail/page.hpp>
#include <await_tree/http/detail/request.hpp>
#include <await_tree/registry.hpp>

#include <fmt/format.h>

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>

namespace await_tree::http::detail {

/// What the routes need of the server's options.
struct route_settings {
  std::optional<registry> source;
  std::string bearer_token;
};

struct response {
  status code = status::ok;
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;
  /// Complete header lines (each ending in \r\n) beyond the usual ones.
  std::string extra_headers{};
};

/// The response as sent; a HEAD request gets the headers only. Every
/// response closes its connection: one request per connection keeps the
/// server simple and a client from holding it with a stream of requests.
inline std::string serialize(const response& r, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
      "Referrer-Policy: no-referrer\r\n{}\r\n",
      static_cast<int>(r.code), reason(r.code), r.content_type, r.body.size(), r.extra_headers);
  if (!head_only) out += r.body;
  return out;
}

inline response refused(const refusal& r) {
  response out{.code = r.code, .body = r.why + '\n'};
  if (r.code == status::unauthorized) out.extra_headers = "WWW-Authenticate: Bearer\r\n";
  if (r.code == status::method_not_allowed) out.extra_headers = "Allow: GET, HEAD\r\n";
  return out;
}

/// Compares in time independent of where the strings first differ, so that
/// response times do not reveal the token a byte at a time.
inline bool same_secret(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = static_cast<unsigned char>(difference | (a[i] ^ b[i]));
  }
  return difference == 0;
}

inline bool authorized(const request_head& head, std::string_view token) noexcept {
  if (token.empty()) return true;
  constexpr std::string_view scheme = "Bearer ";
  if (!head.authorization || head.authorization->size() < scheme.size() ||
      !iequals(head.authorization->substr(0, scheme.size()), scheme)) {
    return false;
  }
  return same_secret(trim(head.authorization->substr(scheme.size())), token);
}

/// A fresh nonce per page, so that only the page's own script and style
/// run: an injected inline handler would not carry it.
inline std::string make_nonce() {
  std::random_device device;
  std::string nonce;
  for (int i = 0; i < 4; ++i) nonce += fmt::format("{:08x}", device());
  return nonce;
}

inline std::chrono::nanoseconds long_running_threshold(const std::optional<registry>& source) {
  if (source) return source->settings().long_running_threshold;
  if (const registry* global = global_registry()) return global->settings().long_running_threshold;
  return config{}.long_running_threshold;
}

inline response page_response(const route_settings& settings) {
  const std::string nonce = make_nonce();
  return {.content_type = "text/html; charset=utf-8",
          .body = page_html(nonce, long_running_threshold(settings.source)),
          .extra_headers = fmt::format(
              "Content-Security-Policy: default-src 'none'; script-src 'nonce-{0}'; "
              "style-src 'nonce-{0}'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'\r\n",
              nonce)};
}

inline response dump_response(const route_settings& settings, std::string_view query,
                              dump_format format) {
  auto parsed = parse_dump_query(query, {.source = settings.source, .format = format});
  if (const auto* error = std::get_if<refusal>(&parsed)) return refused(*error);
  const bool json = format == dump_format::json;
  return {.content_type = json ? "application/json" : "text/plain; charset=utf-8",
          .body = dump_to_string(std::get<dump_options>(parsed))};
}

/// The response to a parsed request. The page and /healthz hold no task
/// data and are served without the token (a browser cannot send one when
/// it opens a page; the page sends it with its own requests).
inline response route(const request_head& head, const route_settings& settings) {
  if (head.method != "GET" && head.method != "HEAD") {
    return refused({status::method_not_allowed, "only GET and HEAD"});
  }
  if (head.path == "/") return page_response(settings);
  if (head.path == "/healthz") return {.body = "ok\n"};
  const bool is_dump = head.path == "/tasks.txt" || head.path == "/tasks.json";
  if (!is_dump) return refused({status::not_found, "not found"});
  if (!authorized(head, settings.bearer_token)) {
    return refused({status::unauthorized, "missing or wrong bearer token"});
  }
  return dump_response(settings, head.query,
                       head.path == "/tasks.json" ? dump_format::json : dump_format::text);
}

}  // namespace await_tree::http::detail
