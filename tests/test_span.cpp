// SPDX-License-Identifier: Apache-2.0
#include <await_tree/span.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <utility>

using await_tree::span;

namespace {
constexpr char literal_name[] = "read block";
}

TEST_CASE("a literal span points at the literal, without copying", "[span]") {
  const span s = "read block";
  CHECK(s.name() == "read block");
  const span from_constant(literal_name);
  CHECK(from_constant.name().data() == literal_name);
  CHECK_FALSE(s.is_verbose());
  CHECK_FALSE(s.is_long_running());
}

TEST_CASE("a runtime string is copied, so its buffer may die", "[span]") {
  std::string name = "working in baz 3";
  const span s(name);
  CHECK(s.name().data() != name.data());
  name.assign("overwritten!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
  CHECK(s.name() == "working in baz 3");

  char buffer[] = "stack buffer";
  const span from_view{std::string_view(buffer)};
  buffer[0] = 'X';
  CHECK(from_view.name() == "stack buffer");

  CHECK(span(std::string()).name().empty());
}

TEST_CASE("a modifier of a temporary passes that very span on", "[span]") {
  span temporary = "t";
  span&& same = std::move(temporary).long_running();
  CHECK(&same == &temporary);
  CHECK(temporary.is_long_running());
}

TEST_CASE("flags are set by the modifiers", "[span]") {
  const span base = "s";
  const span v = base.verbose();
  const span l = base.long_running();
  const span both = span("s").verbose().long_running();
  CHECK_FALSE(base.is_verbose());
  CHECK(v.is_verbose());
  CHECK_FALSE(v.is_long_running());
  CHECK(l.is_long_running());
  CHECK(both.is_verbose());
  CHECK(both.is_long_running());
  CHECK(v != l);
  CHECK(span("s") == base);
}

TEST_CASE("copies and moves keep the name and flags", "[span]") {
  span owned(std::string(100, 'x'));
  const span copy = owned;
  CHECK(copy == owned);
  CHECK(copy.name().data() != owned.name().data());

  const span moved = std::move(owned);
  CHECK(moved.name() == std::string(100, 'x'));

  span assigned = "first";
  assigned = copy;
  CHECK(assigned == copy);
  assigned = span("literal").long_running();
  CHECK(assigned.name() == "literal");
  CHECK(assigned.is_long_running());
  CHECK(assigned.name() == "literal");

  // Assigning over a heap copy frees it (the sanitizers' leak check).
  span heap(std::string(100, 'y'));
  heap = span(std::string_view("short"));
  CHECK(heap.name() == "short");
  span& alias = heap;
  heap = std::move(alias);  // a self-move leaves the span as it was
  CHECK(heap.name() == "short");

  span from = std::string_view("in place");
  span to = "x";
  to = std::move(from);
  CHECK(to.name() == "in place");
  CHECK(from.name().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}
