// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/dump.hpp>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace await_tree::http::detail {

/// The statuses the server answers with.
enum class status {
  ok = 200,
  bad_request = 400,
  unauthorized = 401,
  not_found = 404,
  method_not_allowed = 405,
  payload_too_large = 413,
  service_unavailable = 503,
};

constexpr std::string_view reason(status s) noexcept {
  switch (s) {
    case status::ok:
      return "OK";
    case status::bad_request:
      return "Bad Request";
    case status::unauthorized:
      return "Unauthorized";
    case status::not_found:
      return "Not Found";
    case status::method_not_allowed:
      return "Method Not Allowed";
    case status::payload_too_large:
      return "Payload Too Large";
    case status::service_unavailable:
      return "Service Unavailable";
  }
  return "Unknown";
}

/// A refusal: the status and a line saying why, sent as the body.
struct refusal {
  status code;
  std::string why;
};

/// The parts of a request head the server uses; views into the received text.
struct request_head {
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::optional<std::string_view> authorization;
};

/// Where the head ends (just past its blank line) in what has arrived so
/// far, if it has.
inline std::optional<std::size_t> head_end(std::string_view received) noexcept {
  if (const auto pos = received.find("\r\n\r\n"); pos != std::string_view::npos) return pos + 4;
  if (const auto pos = received.find("\n\n"); pos != std::string_view::npos) return pos + 2;
  return std::nullopt;
}

constexpr bool is_token_char(char c) noexcept {
  constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         specials.find(c) != std::string_view::npos;
}

constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

/// Visible ASCII only: a target with spaces, controls or raw non-ASCII bytes
/// is malformed (clients percent-encode those).
constexpr bool is_visible_ascii(std::string_view s) noexcept {
  for (char c : s) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

/// Field values may hold tabs and any byte but the other controls.
constexpr bool is_field_value(std::string_view s) noexcept {
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) return false;
  }
  return true;
}

constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// Cuts `text` at the first `separator`: the part before, and `text` keeps
/// the rest (empty when there is no separator).
constexpr std::string_view take_until(std::string_view& text, std::string_view separator) noexcept {
  const auto pos = text.find(separator);
  const std::string_view first = text.substr(0, pos);
  text = pos == std::string_view::npos ? std::string_view{} : text.substr(pos + separator.size());
  return first;
}

/// `METHOD SP target SP HTTP/1.x`, the target in origin form.
inline std::variant<request_head, refusal> parse_request_line(std::string_view line) {
  request_head head;
  head.method = take_until(line, " ");
  std::string_view target = take_until(line, " ");
  const std::string_view version = line;
  if (!is_token(head.method) || target.empty() || target.front() != '/' ||
      !is_visible_ascii(target) || (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return refusal{status::bad_request, "malformed request line"};
  }
  head.path = take_until(target, "?");
  head.query = target;
  return head;
}

/// Parses a complete head (request line and fields, up to its blank line).
inline std::variant<request_head, refusal> parse_request_head(std::string_view text) {
  std::string_view rest = text;
  auto parsed = parse_request_line(trim(take_until(rest, "\n")));
  if (std::holds_alternative<refusal>(parsed)) return parsed;
  auto& head = std::get<request_head>(parsed);
  while (!rest.empty()) {
    std::string_view line = take_until(rest, "\n");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)) ||
        !is_field_value(line.substr(colon + 1))) {
      return refusal{status::bad_request, "malformed header field"};
    }
    if (iequals(line.substr(0, colon), "authorization")) {
      if (head.authorization) return refusal{status::bad_request, "more than one Authorization"};
      head.authorization = trim(line.substr(colon + 1));
    }
  }
  return parsed;
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decodes a query component (`%XX` and `+` for space); nullopt when a
/// `%` is not followed by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

inline std::optional<bool> parse_flag(std::string_view v) noexcept {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return std::nullopt;
}

/// Applies one `name=value` of the query to `options`; a refusal for an
/// unknown name or a bad value.
inline std::optional<refusal> apply_query_parameter(std::string_view name, const std::string& value,
                                                    dump_options& options) {
  const auto bad = [name] {
    return refusal{status::bad_request, fmt::format("bad value for {}", name)};
  };
  if (name == "grouped") {
    const auto flag = parse_flag(value);
    if (!flag) return bad();
    options.grouped = *flag;
  } else if (name == "mask_digits") {
    const auto flag = parse_flag(value);
    if (!flag) return bad();
    options.grouping.normalize = *flag ? &mask_digits : nullptr;
  } else if (name == "order") {
    if (value == "by_key") {
      options.order = dump_order::by_key;
    } else if (value == "longest_waiting_first") {
      options.order = dump_order::longest_waiting_first;
    } else {
      return bad();
    }
  } else if (name == "limit") {
    std::size_t limit = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), limit);
    if (error != std::errc{} || end != value.data() + value.size() || value.empty()) return bad();
    options.limit = limit;
  } else if (name == "key") {
    options.key_contains = value;
  } else {
    return refusal{status::bad_request,
                   "unknown query parameter (known: grouped, mask_digits, "
                   "order, limit, key)"};
  }
  return std::nullopt;
}

/// `options` with the query's parameters applied, or why the query is bad.
inline std::variant<dump_options, refusal> parse_dump_query(std::string_view query,
                                                            dump_options options) {
  while (!query.empty()) {
    std::string_view value = take_until(query, "&");
    if (value.empty()) continue;
    const auto raw_name = take_until(value, "=");
    const auto name = percent_decode(raw_name);
    const auto decoded = percent_decode(value);
    if (!name || !decoded) return refusal{status::bad_request, "bad percent-encoding in query"};
    if (auto error = apply_query_parameter(*name, *decoded, options)) return *std::move(error);
  }
  return options;
}

}  // namespace await_tree::http::detail
